/**
 * SUBSCRIBE and UNSUBSCRIBE for both session kinds (spec §5.2 provision table, spec §8.2).
 * Granted QoS is capped at 1 (spec §5.2: QoS 2 not supported).
 */
import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import type { MqttConnection } from './connection.ts';
import { RC, subackFailure } from './reason-codes.ts';
import { PROVISION_RESPONSE_TOPIC, subscriptionOf } from './topics.ts';
import { gatewaySubscriptionOf } from './gateway/topics.ts';

const cap = (qos: number): 0 | 1 => (qos >= 1 ? 1 : 0);

/** Answers SUBACK with one code per filter. */
export function handleSubscribe(conn: MqttConnection, packet: ISubscribePacket): void {
  const granted = packet.subscriptions.map(({ topic, qos }) => {
    if (conn.provision) {
      if (topic !== PROVISION_RESPONSE_TOPIC) return subackFailure(conn.version); // spec §5.2
      conn.provision.responseQos = cap(qos);
      return cap(qos);
    }
    const gatewaySub = gatewaySubscriptionOf(topic);
    if (gatewaySub) {
      // gateway spec §1.6: granted to any device; only a gateway's connection ever gets messages on them.
      conn.device!.gateway?.subscribe(gatewaySub, cap(qos));
      return cap(qos);
    }
    const sub = subscriptionOf(topic);
    if (!sub) return subackFailure(conn.version); // spec §8.2: unsupported subscribe -> 0x80 / 0x8F
    conn.device!.subscribe(sub.kind, sub.style, cap(qos));
    return cap(qos);
  });
  conn.send({ cmd: 'suback', messageId: packet.messageId!, granted });
}

/** Answers UNSUBACK; v5 carries a code per filter (spec §5.2: 0x00, 0x11 not subscribed, 0x8F unknown). */
export function handleUnsubscribe(conn: MqttConnection, packet: IUnsubscribePacket): void {
  const codes = packet.unsubscriptions.map((topic) => {
    if (conn.provision) {
      if (topic !== PROVISION_RESPONSE_TOPIC) return RC.TOPIC_FILTER_INVALID;
      const existed = conn.provision.responseQos !== undefined;
      conn.provision.responseQos = undefined;
      return existed ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED;
    }
    const gatewaySub = gatewaySubscriptionOf(topic);
    if (gatewaySub) return conn.device!.gateway?.unsubscribe(gatewaySub) ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED;
    const sub = subscriptionOf(topic);
    if (!sub) return RC.TOPIC_FILTER_INVALID;
    return conn.device!.unsubscribe(sub.kind) ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED;
  });
  if (conn.version === 5) conn.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: codes });
  else conn.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: [] });
}
