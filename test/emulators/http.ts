// What the emulators' HTTP fronts share.
import http from 'node:http';

/** A cloud's error answer: an HTTP status and the cloud's own error code, with its message. */
export class StatusError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Passes a request (its body already read) to `upstream` as it came, and its answer back; 502 if upstream fails. */
export function forwarderTo(upstream: URL): (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void {
  return (req, body, res) => {
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    proxied.on('error', (err) => {
      res.writeHead(502);
      res.end(err.message);
    });
    proxied.end(body);
  };
}
