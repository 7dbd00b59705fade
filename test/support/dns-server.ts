/**
 * A small authoritative DNS responder on 127.0.0.1 for integration tests (node:dgram, UDP only).
 * It answers A, AAAA and SRV queries from a mutable zone, and can be told to answer SERVFAIL,
 * NXDOMAIN, an empty NOERROR (NODATA) or nothing at all for a name.
 *
 * Wire format after RFC 1035 §4.1 (header, question, resource records) and RFC 2782 (SRV RDATA:
 * priority, weight, port, target) and RFC 3596 (AAAA: 16 octets). Answers name their owner with a
 * compression pointer to the question (RFC 1035 §4.1.4); SRV targets are written uncompressed.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const TYPE_SRV = 33;

const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

export interface AddressRecord {
  address: string;
  /** Seconds. @default the server's defaultTtl */
  ttl?: number;
}

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
  /** Seconds. @default the server's defaultTtl */
  ttl?: number;
}

/**
 * How the server answers a name: `normal` from the zone, `servfail` (RCODE 2), `nxdomain`
 * (RCODE 3), `nodata` (NOERROR without answers) or `drop` (no reply, the client times out).
 */
export type AnswerMode = 'normal' | 'servfail' | 'nxdomain' | 'nodata' | 'drop';

interface ZoneEntry {
  a: AddressRecord[];
  aaaa: AddressRecord[];
  srv: SrvRecord[];
  mode: AnswerMode;
}

export interface QueryLogEntry {
  readonly name: string;
  readonly type: number;
}

export interface TestDnsServer {
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** `127.0.0.1:PORT`, for `Resolver#setServers`. */
  readonly address: string;
  /** Every question received, in order. */
  readonly queries: readonly QueryLogEntry[];
  /** How many questions for `name` (and `type`, when given) arrived so far. */
  count(name: string, type?: number): number;
  /** Replaces the A and AAAA records of `name` (addresses are sorted into families). */
  setAddresses(name: string, records: readonly (AddressRecord | string)[]): void;
  /** Replaces the SRV records of `name`. */
  setSrv(name: string, records: readonly SrvRecord[]): void;
  /** Sets how `name` is answered. */
  setMode(name: string, mode: AnswerMode): void;
  /** Forgets every record, mode and logged query. */
  clear(): void;
  /** Stops the socket. Idempotent. */
  close(): Promise<void>;
}

/** Starts a responder on a free port of 127.0.0.1. */
export async function startDnsServer(
  options: { defaultTtl?: number } = {},
): Promise<TestDnsServer> {
  const defaultTtl = options.defaultTtl ?? 30;
  const zone = new Map<string, ZoneEntry>();
  const queries: QueryLogEntry[] = [];
  const entry = (name: string): ZoneEntry => {
    const key = canonical(name);
    let e = zone.get(key);
    if (e === undefined) {
      e = { a: [], aaaa: [], srv: [], mode: 'normal' };
      zone.set(key, e);
    }
    return e;
  };

  const socket: Socket = createSocket('udp4');
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const reply = answer(msg, zone, queries, defaultTtl);
    if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  let closing: Promise<void> | undefined;

  return {
    port,
    address: `127.0.0.1:${port}`,
    queries,
    count(name, type) {
      const key = canonical(name);
      return queries.filter((q) => q.name === key && (type === undefined || q.type === type))
        .length;
    },
    setAddresses(name, records) {
      const e = entry(name);
      e.a = [];
      e.aaaa = [];
      for (const r of records) {
        const rec = typeof r === 'string' ? { address: r } : r;
        if (isIPv4(rec.address)) e.a.push(rec);
        else if (isIPv6(rec.address)) e.aaaa.push(rec);
        else throw new Error(`not an IP address: ${rec.address}`);
      }
    },
    setSrv(name, records) {
      entry(name).srv = [...records];
    },
    setMode(name, mode) {
      entry(name).mode = mode;
    },
    clear() {
      zone.clear();
      queries.length = 0;
    },
    close() {
      closing ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closing;
    },
  };
}

function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

interface Question {
  name: string;
  type: number;
  /** Offset just past the question (QTYPE and QCLASS included). */
  end: number;
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12) return undefined;
  if (msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    off++;
    if (len === 0) break;
    // Queries carry no compression pointers (RFC 1035 §4.1.4 lets them, but no resolver does).
    if ((len & 0xc0) !== 0 || off + len > msg.length) return undefined;
    labels.push(msg.toString('latin1', off, off + len));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: canonical(labels.join('.')), type: msg.readUInt16BE(off), end: off + 4 };
}

function answer(
  msg: Buffer,
  zone: Map<string, ZoneEntry>,
  log: QueryLogEntry[],
  defaultTtl: number,
): Buffer | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return undefined; // a response, not a query
  const q = parseQuestion(msg);
  if (q === undefined) return header(id, flags, RCODE_FORMERR, 0, 0);
  log.push({ name: q.name, type: q.type });
  const opcode = (flags >> 11) & 0xf;
  const question = msg.subarray(12, q.end);
  if (opcode !== 0) return Buffer.concat([header(id, flags, RCODE_NOTIMP, 1, 0), question]);
  const e = zone.get(q.name);
  const mode = e?.mode ?? 'normal';
  if (mode === 'drop') return undefined;
  if (mode === 'servfail')
    return Buffer.concat([header(id, flags, RCODE_SERVFAIL, 1, 0), question]);
  const known = e !== undefined && (e.a.length > 0 || e.aaaa.length > 0 || e.srv.length > 0);
  if (mode === 'nxdomain' || (mode === 'normal' && !known))
    return Buffer.concat([header(id, flags, RCODE_NXDOMAIN, 1, 0), question]);
  const records: Buffer[] = [];
  if (mode === 'normal' && e !== undefined) {
    if (q.type === TYPE_A)
      for (const r of e.a) records.push(rr(TYPE_A, r.ttl ?? defaultTtl, ipv4(r.address)));
    if (q.type === TYPE_AAAA)
      for (const r of e.aaaa) records.push(rr(TYPE_AAAA, r.ttl ?? defaultTtl, ipv6(r.address)));
    if (q.type === TYPE_SRV)
      for (const r of e.srv) records.push(rr(TYPE_SRV, r.ttl ?? defaultTtl, srv(r)));
  }
  return Buffer.concat([header(id, flags, RCODE_NOERROR, 1, records.length), question, ...records]);
}

/** Response header: QR, AA and RA set; opcode and RD copied from the query. */
function header(id: number, queryFlags: number, rcode: number, qd: number, an: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  const flags = 0x8000 | (queryFlags & 0x7800) | 0x0400 | (queryFlags & 0x0100) | 0x0080 | rcode;
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(0, 8);
  b.writeUInt16BE(0, 10);
  return b;
}

/** One answer record owned by the question's name (pointer 0xC00C: offset 12). */
function rr(type: number, ttl: number, rdata: Buffer): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0xc00c, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt16BE(1, 4); // class IN
  b.writeUInt32BE(ttl >>> 0, 6);
  b.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([b, rdata]);
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map((p) => Number(p)));
}

function ipv6(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return b;
}

function encodeName(name: string): Buffer {
  const labels = canonical(name)
    .split('.')
    .filter((l) => l.length > 0);
  const parts = labels.map((l) =>
    Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]),
  );
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function srv(r: SrvRecord): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(r.priority, 0);
  b.writeUInt16BE(r.weight, 2);
  b.writeUInt16BE(r.port, 4);
  return Buffer.concat([b, encodeName(r.target)]);
}
