export default async function memory() {
  return { title: 'Memory', body: 'todo' };
}
