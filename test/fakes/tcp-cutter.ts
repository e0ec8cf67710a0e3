import { once } from "node:events";
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";

/**
 * A TCP forwarder to put in front of a real server (Postgres) so a test can take the network away:
 * cut() destroys every connection and stops listening, so new ones are refused as by a server that
 * is down; restore() listens again on the same port.
 */
export class TcpCutter {
  private readonly sockets = new Set<Socket>();

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
        other.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  }
}
