// The few parts of `ws` (Miniflare's WebSocket client, which ships no types) that scripts/lib/inspector.ts
// and bench/profile.ts use.
declare module "ws" {
  export default class WebSocket {
    constructor(url: string);
    on(event: "open", listener: () => void): this;
    on(event: "message", listener: (data: { toString(): string }) => void): this;
    on(event: "error", listener: (error: Error) => void): this;
    once(event: "open", listener: () => void): this;
    once(event: "error", listener: (error: Error) => void): this;
    send(data: string): void;
    close(): void;
    terminate(): void;
  }
}
