// Node.js as server and client on one event loop (issue 14, item 12).
//
//     node node_http.js SADDR PORT PEER_ADDR PEER_PORT
//
// Serves PEER's /reply, fetched anew for each request, on SADDR:PORT (an
// http server whose handler is an http client of the peer), then prints
// "listening" and serves until the peer's client has made its requests; it
// exits after 4 requests, printing "served N bytes" for each.
const http = require("http");
const [addr, port, peer, peerPort] = process.argv.slice(2);
let served = 0;
const server = http.createServer((req, res) => {
	http.get({ host: peer, port: Number(peerPort), path: req.url, agent: false }, (up) => {
		const parts = [];
		up.on("data", (d) => parts.push(d));
		up.on("end", () => {
			const body = Buffer.concat(parts);
			res.writeHead(up.statusCode, { "Content-Length": body.length });
			res.end(body, () => {
				console.log("served " + body.length + " bytes");
				if (++served === 4)
					server.close();
			});
		});
	}).on("error", (e) => {
		console.log("client error " + e.code);
		res.writeHead(502);
		res.end();
	});
});
server.listen(Number(port), addr, () => console.log("listening"));
