import { once } from "node:events";
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";

/**
 * A TCP forwarder to put in front of a real server (Postgres) so a test can take the network away:
 * cut() destroys every connection and stops listening, so new ones are refused as by a server that
 * is down; restore() listens again on the same port. hang() is the other failure: connections are
 * accepted and kept, but no byte passes either way (a stopped server, a partition without resets)
 * until resume().
 */
export class TcpCutter {
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<[client: Socket, upstream: Socket]>();
  private hung = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpCutter> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const cutter = new TcpCutter(server, (server.address() as AddressInfo).port);
    server.on("connection", (client) => cutter.forward(client, target));
    return cutter;
  }

  /** The same URL with its host and port pointing at the cutter. */
  url(of: string): string {
    const url = new URL(of);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.toString();
  }

  cut(): void {
    if (this.server.listening) this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }

  async restore(): Promise<void> {
    this.server.listen(this.port, "127.0.0.1");
    await once(this.server, "listening");
  }

  /** From now on nothing passes, on open connections and on new ones, and nothing is refused either. */
  hang(): void {
    this.hung = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Bytes held while hung pass on, as when a stopped server is continued. */
  resume(): void {
    this.hung = false;
    for (const [client, upstream] of this.pairs) this.join(client, upstream);
  }

  async close(): Promise<void> {
    const closed = this.server.listening ? once(this.server, "close") : undefined;
    this.cut();
    await closed;
  }

  private forward(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(socket);
      socket.on("error", () => other.destroy());
      socket.on("close", () => {
        this.sockets.delete(socket);
        this.pairs.delete(pair);
        other.destroy();
      });
    }
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    if (!this.hung) this.join(client, upstream);
  }

  private join(client: Socket, upstream: Socket): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
