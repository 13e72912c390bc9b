/**
 * A live subscription over the WebSocket API (`/api/ws`, thingsboard-websocket.md): authCmd with the session's JWT,
 * then one command; every frame's `data` is handed to the caller. Reconnects (with a fresh token) when the socket
 * closes, e.g. at token expiry.
 */
import { refresh, session, tokenExpiry } from './api.ts';

export type WsData = Record<string, [number, string | null][]>;

export interface WsCommand {
  type: 'TIMESERIES' | 'ATTRIBUTES';
  entityType: 'DEVICE';
  entityId: string;
  keys?: string;
  scope?: string;
}

/** Opens the subscription; returns a function that ends it. `onState` reports 'live' or 'reconnecting'. */
export function subscribe(command: WsCommand, onData: (data: WsData) => void, onState: (state: 'live' | 'reconnecting') => void = () => {}): () => void {
  let socket: WebSocket | undefined;
  let closed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const open = async () => {
    let current = session();
    if (current && tokenExpiry(current.token) * 1000 < Date.now() + 5000) {
      await refresh();
      current = session();
    }
    if (!current || closed) return;
    socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/ws`);
    socket.onopen = () => {
      socket!.send(JSON.stringify({ authCmd: { cmdId: 0, token: current!.token }, cmds: [{ ...command, cmdId: 1 }] }));
      onState('live');
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event.data)) as { errorCode?: number; data?: WsData | null };
      if (frame.errorCode === 0 && frame.data) onData(frame.data);
    };
    socket.onclose = () => {
      if (closed) return;
      onState('reconnecting');
      retry = setTimeout(() => void open(), 1000);
    };
  };
  void open();
  return () => {
    closed = true;
    clearTimeout(retry);
    socket?.close();
  };
}
