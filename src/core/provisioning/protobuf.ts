/**
 * Protobuf codec of ThingsBoard's provisioning messages (spec §2.2), shared by the MQTT and CoAP transports.
 * The message layout is ThingsBoard's `transportapi` package (queue.proto); only the wire-relevant fields
 * are declared. Decoding follows proto3: absent strings are "", which core treats as absent.
 */
import protobuf from 'protobufjs';
import { FleetgateError } from '../errors.ts';
import type { ProvisionRequest, ProvisionResult } from '../api.ts';
import type { CredentialsType } from '../model.ts';

// spec §2.2: field numbers and enum values are the wire contract.
const PROTO_SOURCE = `
syntax = "proto3";
package transportapi;
enum CredentialsType { ACCESS_TOKEN = 0; X509_CERTIFICATE = 1; MQTT_BASIC = 2; LWM2M_CREDENTIALS = 3; }
enum ResponseStatus { UNKNOWN = 0; SUCCESS = 1; NOT_FOUND = 2; FAILURE = 3; }
message ValidateDeviceTokenRequestMsg { string token = 1; }
message ValidateDeviceX509CertRequestMsg { string hash = 1; }
message ValidateBasicMqttCredRequestMsg { string clientId = 1; string userName = 2; string password = 3; }
message CredentialsDataProto {
  ValidateDeviceTokenRequestMsg validateDeviceTokenRequestMsg = 1;
  ValidateDeviceX509CertRequestMsg validateDeviceX509CertRequestMsg = 2;
  ValidateBasicMqttCredRequestMsg validateBasicMqttCredRequestMsg = 3;
}
message ProvisionDeviceCredentialsMsg { string provisionDeviceKey = 1; string provisionDeviceSecret = 2; }
message ProvisionDeviceRequestMsg {
  string deviceName = 1;
  CredentialsType credentialsType = 2;
  ProvisionDeviceCredentialsMsg provisionDeviceCredentialsMsg = 3;
  CredentialsDataProto credentialsDataProto = 4;
  bool gateway = 5;
}
message ProvisionDeviceResponseMsg { ResponseStatus status = 1; CredentialsType credentialsType = 2; string credentialsValue = 3; }
`;

const root = protobuf.parse(PROTO_SOURCE, { keepCase: true }).root;
const RequestMsg = root.lookupType('transportapi.ProvisionDeviceRequestMsg');
const ResponseMsg = root.lookupType('transportapi.ProvisionDeviceResponseMsg');

const CREDENTIALS_BY_NUMBER: readonly CredentialsType[] = ['ACCESS_TOKEN', 'X509_CERTIFICATE', 'MQTT_BASIC', 'LWM2M_CREDENTIALS'];
const STATUS_NUMBER = { SUCCESS: 1, NOT_FOUND: 2, FAILURE: 3 } as const;

interface DecodedRequest {
  deviceName?: string;
  credentialsType?: number;
  provisionDeviceCredentialsMsg?: { provisionDeviceKey?: string; provisionDeviceSecret?: string };
  credentialsDataProto?: {
    validateDeviceTokenRequestMsg?: { token?: string };
    validateDeviceX509CertRequestMsg?: { hash?: string };
    validateBasicMqttCredRequestMsg?: { clientId?: string; userName?: string; password?: string };
  };
  gateway?: boolean;
}

/** proto3 default "" means absent (spec §2.2). */
const present = (value: string | undefined): string | undefined => (value ? value : undefined);

/**
 * Decodes a `ProvisionDeviceRequestMsg`. An empty buffer is a valid all-default message (spec §2.1:
 * empty payload yields NOT_FOUND). Throws MALFORMED_PAYLOAD for bytes that are not such a message and
 * INVALID_ARGUMENT for an unknown credentials type number.
 */
export function decodeProvisionRequestProto(buf: Uint8Array): ProvisionRequest {
  let msg: DecodedRequest;
  try {
    msg = RequestMsg.toObject(RequestMsg.decode(buf), { defaults: false }) as DecodedRequest;
  } catch (err) {
    throw new FleetgateError('MALFORMED_PAYLOAD', 'Payload is neither JSON nor a ProvisionDeviceRequestMsg', { cause: err });
  }
  const typeNumber = msg.credentialsType ?? 0;
  const credentialsType = CREDENTIALS_BY_NUMBER[typeNumber];
  if (credentialsType === undefined) throw new FleetgateError('INVALID_ARGUMENT', `Unknown credentials type ${typeNumber}`);
  const creds = msg.provisionDeviceCredentialsMsg ?? {};
  const data = msg.credentialsDataProto ?? {};
  const basic = data.validateBasicMqttCredRequestMsg ?? {};
  const request: ProvisionRequest = {
    provisionDeviceKey: creds.provisionDeviceKey ?? '',
    provisionDeviceSecret: creds.provisionDeviceSecret ?? '',
    credentialsType,
  };
  const optional: Partial<ProvisionRequest> = {
    deviceName: present(msg.deviceName),
    token: present(data.validateDeviceTokenRequestMsg?.token),
    hash: present(data.validateDeviceX509CertRequestMsg?.hash),
    clientId: present(basic.clientId),
    username: present(basic.userName),
    password: present(basic.password),
    gateway: msg.gateway === true ? true : undefined,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (request as unknown as Record<string, unknown>)[key] = value;
  }
  return request;
}

/**
 * Encodes a `ProvisionDeviceResponseMsg`: NOT_FOUND is exactly `08 02`, FAILURE `08 03` (spec §2.2);
 * SUCCESS carries the credentials type and value (MQTT_BASIC as its stored JSON text).
 */
export function encodeProvisionResponseProto(result: ProvisionResult): Buffer {
  if (result.status !== 'SUCCESS') {
    return Buffer.from(ResponseMsg.encode(ResponseMsg.create({ status: STATUS_NUMBER[result.status] })).finish());
  }
  const value = result.credentialsValue;
  const credentialsValue =
    value === undefined
      ? undefined
      : typeof value === 'string'
        ? value
        : JSON.stringify({ clientId: value.clientId, userName: value.userName, password: value.password });
  const message = ResponseMsg.create({
    status: STATUS_NUMBER.SUCCESS,
    credentialsType: CREDENTIALS_BY_NUMBER.indexOf(result.credentialsType),
    ...(credentialsValue !== undefined ? { credentialsValue } : {}),
  });
  return Buffer.from(ResponseMsg.encode(message).finish());
}

/** Encodes a request (tests and load generators use it to act as a device). */
export function encodeProvisionRequestProto(request: ProvisionRequest): Buffer {
  const message = RequestMsg.create({
    deviceName: request.deviceName ?? '',
    credentialsType: CREDENTIALS_BY_NUMBER.indexOf(request.credentialsType ?? 'ACCESS_TOKEN'),
    provisionDeviceCredentialsMsg: { provisionDeviceKey: request.provisionDeviceKey, provisionDeviceSecret: request.provisionDeviceSecret },
    credentialsDataProto: {
      ...(request.token ? { validateDeviceTokenRequestMsg: { token: request.token } } : {}),
      ...(request.hash ? { validateDeviceX509CertRequestMsg: { hash: request.hash } } : {}),
      ...(request.clientId || request.username || request.password
        ? { validateBasicMqttCredRequestMsg: { clientId: request.clientId ?? '', userName: request.username ?? '', password: request.password ?? '' } }
        : {}),
    },
    gateway: request.gateway === true,
  });
  return Buffer.from(RequestMsg.encode(message).finish());
}

/** Decodes a response (tests and load generators). */
export function decodeProvisionResponseProto(buf: Uint8Array): { status: string; credentialsType: CredentialsType; credentialsValue: string } {
  const msg = ResponseMsg.toObject(ResponseMsg.decode(buf), { enums: String, defaults: true }) as {
    status: string;
    credentialsType: CredentialsType;
    credentialsValue: string;
  };
  return msg;
}
