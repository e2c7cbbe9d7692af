// The getting-started tutorial's todo app, kept small: the list lives in memory (the tutorial's
// later chapters add a volume and a database). GET / is the page, GET /items the list as JSON,
// POST /items adds one ({"name": "…"} or a form field `name`), DELETE /items/N removes one.
const http = require('http');
const fs = require('fs');
const path = require('path');

const items = [{ id: 1, name: 'Build the getting-started image with tsrun', completed: true }];
let next = 2;
const page = fs.readFileSync(path.join(__dirname, 'static', 'index.html'), 'utf8');

function body(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(data));
  });
}

const escape = (s) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

const server = http.createServer(async (req, res) => {
  const json = (code, value) => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(value)); };
  if (req.method === 'GET' && req.url === '/') {
    const list = items.map((i) => `<li>${i.completed ? '&#10003; ' : ''}${escape(i.name)}</li>`).join('\n      ');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page.replace('{{items}}', list));
  } else if (req.method === 'GET' && req.url === '/items') {
    json(200, items);
  } else if (req.method === 'POST' && req.url === '/items') {
    const raw = await body(req);
    let name;
    try { name = JSON.parse(raw).name; } catch { name = new URLSearchParams(raw).get('name'); }
    if (typeof name !== 'string' || name.trim() === '') return json(400, { error: 'an item needs a name' });
    const item = { id: next++, name: name.trim(), completed: false };
    items.push(item);
    if ((req.headers['content-type'] || '').includes('json')) return json(201, item);
    res.writeHead(303, { Location: '/' });
    res.end();
  } else if (req.method === 'DELETE' && /^\/items\/\d+$/.test(req.url)) {
    const i = items.findIndex((x) => x.id === Number(req.url.split('/')[2]));
    if (i < 0) return json(404, { error: 'no such item' });
    items.splice(i, 1);
    res.writeHead(204);
    res.end();
  } else {
    json(404, { error: 'not found' });
  }
});

server.listen(3000, () => console.log('Listening on port 3000'));
// `tsrun stop` sends SIGTERM; as PID 1 node has no default handler for it.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
