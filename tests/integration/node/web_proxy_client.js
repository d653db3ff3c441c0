// GET a URL through an HTTP proxy with the npm proxy agents (http-proxy-agent for http://,
// https-proxy-agent, which tunnels with CONNECT, for https://), as a node program would:
//
//   node web_proxy_client.js URL PROXY_URL [CA_FILE]
//
// Prints one JSON line {"status": N, "headers": {...}, "body": "..."} or {"error": "..."} (exit 1).
// Bounded: gives up after 20 s.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const { HttpProxyAgent } = require('http-proxy-agent');
const { HttpsProxyAgent } = require('https-proxy-agent');

const [url, proxy, caFile] = process.argv.slice(2);
if (!url || !proxy) {
  console.error('usage: node web_proxy_client.js URL PROXY_URL [CA_FILE]');
  process.exit(2);
}
const secure = url.startsWith('https:');
const options = { timeout: 20000 };
if (secure) {
  options.agent = new HttpsProxyAgent(proxy, caFile ? { ca: fs.readFileSync(caFile) } : {});
  if (caFile) options.ca = fs.readFileSync(caFile);
} else {
  options.agent = new HttpProxyAgent(proxy);
}
const timer = setTimeout(() => {
  console.log(JSON.stringify({ error: 'no answer within 20 s' }));
  process.exit(1);
}, 20000);
const req = (secure ? https : http).get(url, options, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => {
    clearTimeout(timer);
    console.log(JSON.stringify({ status: res.statusCode, headers: res.headers,
                                 body: Buffer.concat(chunks).toString('utf8') }));
    process.exit(0);
  });
});
req.on('error', (e) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ error: String(e && e.message || e) }));
  process.exit(1);
});
