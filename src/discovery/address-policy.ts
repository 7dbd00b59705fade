/**
 * Which addresses a discovery source may turn into backends. Runtime-neutral: the IP and CIDR
 * parsing is done here, without `node:net`, so the policy works wherever the core runs.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { checkBoolean, checkOptions } from '../validate.js';

/**
 * Named groups of addresses an {@link AddressPolicy} can deny or allow:
 * - `metadata`: cloud instance-metadata endpoints, which hand out credentials:
 *   169.254.169.254 (AWS, GCP, Azure, Oracle, OpenStack), 169.254.170.2 (AWS ECS task
 *   metadata), fd00:ec2::254 (AWS over IPv6), 100.100.100.200 (Alibaba Cloud).
 * - `link-local`: 169.254.0.0/16 (RFC 3927) and fe80::/10 (RFC 4291 §2.5.6).
 * - `loopback`: 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3), and the host names
 *   `localhost` and `*.localhost` (RFC 6761 §6.3).
 * - `multicast`: 224.0.0.0/4 (RFC 5771) and ff00::/8 (RFC 4291 §2.7).
 * - `private`: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918), 100.64.0.0/10 (shared
 *   address space, RFC 6598) and fc00::/7 (unique local, RFC 4193).
 */
export type AddressCategory = 'metadata' | 'link-local' | 'loopback' | 'multicast' | 'private';

/** Options of {@link AddressPolicy} (and the `addressPolicy` option of a discovery binding). */
export interface AddressPolicyOptions {
  /**
   * Addresses to refuse: {@link AddressCategory} names and CIDR ranges (`'10.0.0.0/8'`,
   * `'fd00::/8'`, or one address without a prefix length). A denied address is refused even when
   * `allow` lists it. `[]` refuses only what is always refused (see {@link AddressPolicy}).
   * @default ['metadata', 'link-local', 'multicast']
   */
  deny?: readonly string[];
  /**
   * When given, only addresses in one of these categories or CIDR ranges are admitted (after
   * `deny`). An IPv4 range also matches the IPv4-mapped IPv6 form of its addresses
   * (`::ffff:10.0.0.1`).
   * @default undefined (every address `deny` does not refuse)
   * @example ['10.20.0.0/16', 'fd00:20::/48']
   */
  allow?: readonly string[];
  /**
   * Whether endpoints named by a host name (not an IP literal) are admitted. Their addresses are
   * resolved when a call connects, so the policy cannot judge them; `localhost` and
   * `*.localhost` count as loopback addresses.
   * @default true without `allow`, false with it
   */
  allowHostnames?: boolean;
}

const CATEGORIES: Readonly<Record<AddressCategory, readonly string[]>> = {
  metadata: ['169.254.169.254/32', '169.254.170.2/32', 'fd00:ec2::254/128', '100.100.100.200/32'],
  'link-local': ['169.254.0.0/16', 'fe80::/10'],
  loopback: ['127.0.0.0/8', '::1/128'],
  multicast: ['224.0.0.0/4', 'ff00::/8'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'],
};

/**
 * Never a destination, whatever the policy says: 0.0.0.0/8 and `::` ("this host on this
 * network", RFC 1122 §3.2.1.3 and RFC 4291 §2.5.2; connecting to 0.0.0.0 reaches the local host
 * on Linux) and the limited broadcast address 255.255.255.255 (RFC 919).
 */
const ALWAYS_REFUSED: readonly (readonly [string, string])[] = [
  ['0.0.0.0/8', 'an unspecified address ("this host"), never a destination'],
  ['::/128', 'the unspecified address, never a destination'],
  ['255.255.255.255/32', 'the broadcast address, never a destination'],
];

const DEFAULT_DENY: readonly AddressCategory[] = ['metadata', 'link-local', 'multicast'];

/** A 128-bit address: IPv4 addresses are held in their IPv4-mapped form `::ffff:a.b.c.d`. */
type Bytes = Uint8Array;

interface Range {
  /** How the range was written, or the category it belongs to, for messages. */
  readonly label: string;
  readonly network: Bytes;
  /** Prefix length over the 128-bit form. */
  readonly bits: number;
}

/**
 * Decides which endpoint URLs a discovery binding admits. Always refused: port 0, the
 * unspecified addresses (0.0.0.0/8, `::`) and 255.255.255.255. Then `deny` (by default cloud
 * metadata, link-local and multicast addresses) and, when given, the `allow` list. IPv4-mapped
 * IPv6 addresses (`[::ffff:169.254.169.254]`) are judged as the IPv4 address they carry, and the
 * host is read the way the WHATWG URL parser reads it (`http://2852039166/` is 169.254.169.254).
 *
 * @example
 * ```ts
 * const policy = new AddressPolicy({ deny: ['metadata', 'link-local', 'loopback'], allow: ['10.0.0.0/8'] });
 * policy.check('http://10.1.2.3:8080'); // undefined: admitted
 * policy.check('http://169.254.169.254'); // '169.254.169.254 is a metadata address (...)'
 * ```
 */
export class AddressPolicy {
  readonly #deny: readonly Range[];
  readonly #allow: readonly Range[] | undefined;
  readonly #allowHostnames: boolean;
  readonly #denyLoopbackNames: boolean;
  readonly #allowLoopbackNames: boolean;

  constructor(options: AddressPolicyOptions = {}, field = 'addressPolicy') {
    const o = checkOptions(field, options, ['deny', 'allow', 'allowHostnames']);
    const deny = o.deny === undefined ? DEFAULT_DENY : checkList(`${field}.deny`, o.deny);
    this.#deny = deny.flatMap((entry, i) => ranges(`${field}.deny[${i}]`, entry));
    this.#denyLoopbackNames = deny.includes('loopback');
    if (o.allow === undefined) {
      this.#allow = undefined;
      this.#allowLoopbackNames = true;
    } else {
      const allow = checkList(`${field}.allow`, o.allow);
      this.#allow = allow.flatMap((entry, i) => ranges(`${field}.allow[${i}]`, entry));
      this.#allowLoopbackNames = allow.includes('loopback');
    }
    this.#allowHostnames =
      o.allowHostnames === undefined
        ? o.allow === undefined
        : checkBoolean(`${field}.allowHostnames`, o.allowHostnames);
  }

  /**
   * Why `url` is refused, or `undefined` when the policy admits it. A URL that does not parse is
   * refused too.
   */
  check(url: string): string | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'the URL does not parse';
    }
    if (parsed.port === '0') return 'port 0 is not a port a backend can listen on';
    const host = parsed.hostname;
    const parsedHost = parseHost(host);
    if (parsedHost === undefined) return this.#checkName(host.toLowerCase().replace(/\.$/, ''));
    const [address, canonical] = parsedHost;
    const written = host.startsWith('[') ? host.slice(1, -1) : host;
    const shown = canonical === written ? written : `${written} (${canonical})`;
    for (const [range, why] of alwaysRefused()) {
      if (contains(range, address)) return `${shown} is ${why}`;
    }
    const denied = this.#deny.find((r) => contains(r, address));
    if (denied !== undefined) return `${shown} is in ${denied.label}, which addressPolicy denies`;
    if (this.#allow !== undefined && !this.#allow.some((r) => contains(r, address)))
      return `${shown} is in no range addressPolicy allows`;
    return undefined;
  }

  #checkName(name: string): string | undefined {
    // RFC 6761 §6.3: localhost and its subdomains resolve to loopback addresses.
    if (name === 'localhost' || name.endsWith('.localhost')) {
      if (this.#denyLoopbackNames) return `${name} is a loopback name, which addressPolicy denies`;
      if (this.#allow !== undefined && this.#allowLoopbackNames) return undefined;
    }
    if (!this.#allowHostnames)
      return `${name} is a host name, whose addresses addressPolicy cannot check (allowHostnames is false)`;
    return undefined;
  }
}

let always: readonly (readonly [Range, string])[] | undefined;
function alwaysRefused(): readonly (readonly [Range, string])[] {
  always ??= ALWAYS_REFUSED.map(([cidr, why]) => [parseRange(cidr)!, why] as const);
  return always;
}

function checkList(field: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new LoadBalancerConfigError(
      field,
      value,
      `an array of CIDR ranges or category names (${Object.keys(CATEGORIES).join(', ')})`,
    );
  }
  return value as string[];
}

function ranges(field: string, entry: string): Range[] {
  if (Object.hasOwn(CATEGORIES, entry)) {
    return CATEGORIES[entry as AddressCategory].map((cidr) => ({
      ...parseRange(cidr)!,
      label: `${cidr} (${entry})`,
    }));
  }
  const range = parseRange(entry);
  if (range === undefined) {
    throw new LoadBalancerConfigError(
      field,
      entry,
      `a CIDR range such as "10.0.0.0/8" or "fd00::/8", an address, or one of ${Object.keys(CATEGORIES).join(', ')}`,
    );
  }
  if (!isNetwork(range)) {
    throw new LoadBalancerConfigError(
      field,
      entry,
      'a CIDR range whose address has no bits set past the prefix length (e.g. "10.0.0.0/8", not "10.1.2.3/8")',
    );
  }
  return [range];
}

/** Parses `address` or `address/length`; undefined when it is neither. */
function parseRange(text: string): Range | undefined {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const v4 = parseIPv4(addressText);
  const network = v4 ?? parseIPv6(addressText);
  if (network === undefined) return undefined;
  const max = v4 === undefined ? 128 : 32;
  let length = max;
  if (slash !== -1) {
    const lengthText = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(lengthText)) return undefined;
    length = Number(lengthText);
    if (length > max) return undefined;
  }
  return { label: text, network, bits: v4 === undefined ? length : 96 + length };
}

function isNetwork(range: Range): boolean {
  for (let bit = range.bits; bit < 128; bit++) {
    if ((range.network[bit >> 3]! >> (7 - (bit & 7))) & 1) return false;
  }
  return true;
}

function contains(range: Range, address: Bytes): boolean {
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) if (range.network[i] !== address[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (range.network[whole]! & mask) === (address[whole]! & mask);
}

/**
 * The address a URL host names, or undefined for a host name. Hosts of non-special schemes
 * (`grpc://0x7f.1`) are left as written by the URL parser, so they are read again as an `http:`
 * host to apply the WHATWG IPv4 number forms (`0x7f.1`, `2130706433`, `0` are IPv4 addresses
 * there, and also to `getaddrinfo`).
 */
function parseHost(host: string): [Bytes, string] | undefined {
  if (host.startsWith('[') && host.endsWith(']')) {
    const v6 = parseIPv6(host.slice(1, -1));
    return v6 === undefined ? undefined : [v6, host.slice(1, -1)];
  }
  const v4 = parseIPv4(host);
  if (v4 !== undefined) return [v4, host];
  if (!/^[0-9a-fx.]+$/i.test(host)) return undefined;
  try {
    const canonical = new URL(`http://${host}/`).hostname;
    const read = parseIPv4(canonical);
    return read === undefined ? undefined : [read, canonical];
  } catch {
    // WHATWG: a host ending in a number that is not a valid IPv4 address fails to parse; it is
    // no address, and no host name a resolver answers either.
    return undefined;
  }
}

/** Dotted-quad IPv4 (decimal, no leading zeros), as its IPv4-mapped IPv6 bytes. */
function parseIPv4(text: string): Bytes | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    bytes[12 + i] = n;
  }
  return bytes;
}

/** IPv6 text (RFC 4291 §2.2, with `::` and an optional dotted-quad tail), as 16 bytes. */
function parseIPv6(text: string): Bytes | undefined {
  if (!/^[0-9a-f:.]+$/i.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const split = (s: string): string[] | undefined => {
    if (s === '') return [];
    const g = s.split(':');
    return g.includes('') ? undefined : g;
  };
  const head = split(halves[0]!);
  const tail = halves.length === 2 ? split(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  // A trailing dotted quad stands for the last two groups (RFC 4291 §2.2, form 3); it can only
  // be the very last group of the text.
  const lastPart = halves.length === 2 ? tail : head;
  let v4: Bytes | undefined;
  if (lastPart.at(-1)?.includes('.')) {
    v4 = parseIPv4(lastPart.pop()!);
    if (v4 === undefined) return undefined;
  }
  const words = (groups: string[]): number[] | undefined => {
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const h = words(head);
  const t = words(tail);
  if (h === undefined || t === undefined) return undefined;
  const room = v4 === undefined ? 8 : 6;
  if (halves.length === 1 ? h.length !== room : h.length + t.length > room - 1) return undefined;
  const bytes = new Uint8Array(16);
  const put = (index: number, word: number): void => {
    bytes[index * 2] = word >> 8;
    bytes[index * 2 + 1] = word & 0xff;
  };
  h.forEach((w, i) => {
    put(i, w);
  });
  t.forEach((w, i) => {
    put(room - t.length + i, w);
  });
  if (v4 !== undefined) bytes.set(v4.subarray(12), 12);
  return bytes;
}
