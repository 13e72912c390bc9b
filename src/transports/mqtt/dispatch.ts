/** Routes each packet of an accepted session to the handler of its type (one handler per packet type). */
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { MqttConnection } from './connection.ts';
import { handlePublish } from './publish.ts';
import { RC } from './reason-codes.ts';
import { handleSubscribe, handleUnsubscribe } from './subscribe.ts';

/** Handles one packet after CONNACK (or one queued before it). */
export function dispatchPacket(conn: MqttConnection, packet: Packet): void {
  switch (packet.cmd) {
    case 'publish':
      handlePublish(conn, packet as IPublishPacket);
      return;
    case 'subscribe':
      if (packet.subscriptions.length === 0) conn.fail(RC.PROTOCOL_ERROR, 'SUBSCRIBE without filters'); // [MQTT-3.8.3-3]
      else handleSubscribe(conn, packet);
      return;
    case 'unsubscribe':
      if (packet.unsubscriptions.length === 0) conn.fail(RC.PROTOCOL_ERROR, 'UNSUBSCRIBE without filters'); // [MQTT-3.10.3-2]
      else handleUnsubscribe(conn, packet);
      return;
    case 'pingreq':
      conn.send({ cmd: 'pingresp' });
      conn.device?.gateway?.ready(); // a live gateway gets its sub-devices' pending RPCs
      return;
    case 'disconnect':
      conn.clientDisconnected(); // [MQTT-3.14.4-1]
      return;
    case 'puback':
      conn.acknowledged(packet.messageId ?? -1);
      return;
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
    case 'auth':
      return; // QoS 2 and enhanced authentication are not offered; ignored as ThingsBoard does.
    default:
      conn.fail(RC.PROTOCOL_ERROR, `unexpected ${packet.cmd}`);
  }
}
