/**
 * CONNECT: opens a provision-only session (spec §5.2) or authenticates a device (spec §8.1) and answers
 * CONNACK with the version's codes and, on MQTT 5, the server's capabilities.
 */
import { randomUUID } from 'node:crypto';
import { FleetgateError } from '../../core/errors.ts';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { MqttConnection } from './connection.ts';
import { DeviceSession } from './device-session.ts';
import { ProvisionSession } from './provision-session.ts';
import { connackCode, RC, V3_CONNACK } from './reason-codes.ts';
import { PROVISION_USERNAME } from './topics.ts';

/**
 * Handles the first CONNECT of a connection. Provision sessions and refusals are answered at once; a device login
 * returns the promise of its credential lookup.
 */
export function handleConnect(conn: MqttConnection, packet: IConnectPacket): Promise<void> | undefined {
  const version = packet.protocolVersion ?? 4;
  conn.version = version;
  if ((packet as { bridgeMode?: boolean }).bridgeMode) conn.bridgeMode = true; // mqtt-packet sets it; its types omit it
  conn.setKeepalive(packet.keepalive ?? 0);
  const properties = packet.properties;
  if (version === 5 && properties?.maximumPacketSize) conn.clientMaxPacketSize = properties.maximumPacketSize;
  const clientId = packet.clientId ?? '';
  const username = packet.username;
  if (conn.refusal) {
    // Admission limits (issue 7 §2): refused before any lookup, with a code naming the limit on v5.
    conn.refuse(version === 5 ? (conn.refusal === 'max-connections' ? RC.SERVER_BUSY : RC.CONNECTION_RATE_EXCEEDED) : V3_CONNACK.SERVER_UNAVAILABLE);
    return undefined;
  }

  // spec §5.2: username or client id `provision` -> provision-only session, no credential lookup.
  if (username === PROVISION_USERNAME || clientId === PROVISION_USERNAME) {
    conn.provision = new ProvisionSession(conn);
    conn.accept('provision', connack(conn, packet));
    return undefined;
  }
  if (clientId === '' && !packet.clean && version !== 5) {
    conn.refuse(V3_CONNACK.IDENTIFIER_REJECTED); // [MQTT-3.1.3-8]
    return undefined;
  }
  return authenticate(conn, packet, clientId, username);
}

/** A device login: the client certificate or the MQTT credentials decide (spec §8.1), then CONNACK. */
async function authenticate(conn: MqttConnection, packet: IConnectPacket, clientId: string, username: string | undefined): Promise<void> {
  const version = conn.version;
  let identity;
  const source = { transport: 'mqtt' as const, address: conn.address };
  const certificate = conn.clientCertificate;
  try {
    if (certificate && certificate.kind !== 'none') {
      if (certificate.kind === 'valid' && certificate.provisioned) {
        await certificate.provisioned; // spec §7 step 6: chain provisioning first; an invalid chain closed the connection
        if (conn.closed) return;
      }
      // spec §8.1 step 1: a client certificate decides alone; unknown or expired -> v3 5 / v5 0x87.
      identity = certificate.kind === 'valid' ? await conn.ctx.core.auth.byX509Hash(certificate.hash, 'MQTT', source) : undefined;
      if (!identity) throw new FleetgateError('UNAUTHORIZED', certificate.kind === 'expired' ? 'Client certificate expired' : 'Unknown client certificate');
    } else {
      // spec §8.1: the lookup order (MQTT_BASIC by client id/user name, then access token) lives in core.
      identity = await conn.ctx.core.auth.byMqttCredentials(clientId, username, packet.password?.toString('utf8'), source);
    }
  } catch (err) {
    const code = connackCode(err, version);
    // One log line per refused device login (issue 6); never the credentials themselves.
    conn.ctx.logger.info(
      { event: 'auth_failure', transport: 'mqtt', address: conn.address, reason: err instanceof FleetgateError ? err.code : 'INTERNAL', connack: code, protocolVersion: version },
      'mqtt: device login refused',
    );
    conn.refuse(code);
    return;
  }
  if (conn.closed) return;
  conn.device = new DeviceSession(conn, identity);
  conn.accept('device', connack(conn, packet));
}

/** A successful CONNACK. spec §8.1: sessionPresent mirrors !cleanSession although no state is kept. */
function connack(conn: MqttConnection, packet: IConnectPacket): IConnackPacket {
  const sessionPresent = !packet.clean;
  if (conn.version !== 5) return { cmd: 'connack', returnCode: V3_CONNACK.ACCEPTED, sessionPresent };
  const limits = conn.ctx.limits;
  return {
    cmd: 'connack',
    reasonCode: RC.SUCCESS,
    sessionPresent,
    properties: {
      maximumQoS: 1,
      retainAvailable: false,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
      maximumPacketSize: limits.maxPacketSize,
      topicAliasMaximum: limits.topicAliasMaximum,
      // [MQTT-3.2.2-16] a v5 client that sent an empty client id is told the one it got.
      ...(packet.clientId ? {} : { assignedClientIdentifier: randomUUID() }),
    },
  };
}
