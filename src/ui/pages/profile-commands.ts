/**
 * Ready-to-copy provisioning commands for a profile's key and secret: HTTP (curl), MQTT (mosquitto_rr, then
 * mosquitto_pub/mosquitto_sub with the token), the seed guide's Python MQTT script filled in, and CoAP (coap-client).
 */

export interface Endpoint {
  host: string;
  httpBase: string;
  mqttPort: number;
  coapPort: number;
}

/** A string inside single quotes for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A Python string literal. */
function py(text: string): string {
  return JSON.stringify(text);
}

export function provisionRequest(deviceName: string, key: string, secret: string): string {
  return JSON.stringify({ deviceName, provisionDeviceKey: key, provisionDeviceSecret: secret });
}

export function curlCommand(e: Endpoint, deviceName: string, key: string, secret: string): string {
  return `curl -s -X POST ${e.httpBase}/api/v1/provision \\\n  -H 'content-type: application/json' \\\n  -d ${shellQuote(provisionRequest(deviceName, key, secret))}`;
}

export function mosquittoCommands(e: Endpoint, deviceName: string, key: string, secret: string): string {
  return [
    '# 1. Provision: one MQTT 5 connection as user "provision", request and response',
    `mosquitto_rr -h ${e.host} -p ${e.mqttPort} -u provision -q 1 \\\n  -t /provision/request -e /provision/response \\\n  -m ${shellQuote(provisionRequest(deviceName, key, secret))}`,
    '',
    '# 2. With the credentialsValue of the answer as the token:',
    'TOKEN=<credentialsValue>',
    `mosquitto_pub -h ${e.host} -p ${e.mqttPort} -u "$TOKEN" -q 1 -t v1/devices/me/telemetry -m '{"temperature":21.5}'`,
    `mosquitto_sub -h ${e.host} -p ${e.mqttPort} -u "$TOKEN" -q 1 -t v1/devices/me/attributes -v`,
  ].join('\n');
}

export function coapCommand(e: Endpoint, deviceName: string, key: string, secret: string): string {
  return `coap-client -m post -t application/json \\\n  -e ${shellQuote(provisionRequest(deviceName, key, secret))} \\\n  coap://${e.host}:${e.coapPort}/api/v1/provision`;
}

/** The provisioning guide's MQTT example (spec/seed-device-provisioning.md), with this server and profile filled in. */
export function pythonScript(e: Endpoint, deviceName: string, key: string, secret: string): string {
  return `from paho.mqtt.client import Client
from json import dumps, loads

RESULT_CODES = {
    1: "incorrect protocol version",
    2: "invalid client identifier",
    3: "server unavailable",
    4: "bad username or password",
    5: "not authorised",
    }


THINGSBOARD_HOST = ${py(e.host)}  # fleetgate host
THINGSBOARD_PORT = ${e.mqttPort}  # fleetgate MQTT port

PROVISION_DEVICE_KEY = ${py(key)}  # Provision device key of the profile
PROVISION_DEVICE_SECRET = ${py(secret)}  # Provision device secret of the profile


PROVISION_REQUEST = {"provisionDeviceKey": PROVISION_DEVICE_KEY,
                     "provisionDeviceSecret": PROVISION_DEVICE_SECRET,
                     "deviceName": ${py(deviceName)}
                     }


class ProvisionClient(Client):
    PROVISION_REQUEST_TOPIC = "/provision/request"
    PROVISION_RESPONSE_TOPIC = "/provision/response"

    def __init__(self, host, port, provision_request):
        super().__init__()
        self._host = host
        self._port = port
        self._username = "provision"
        self.on_connect = self.__on_connect
        self.on_message = self.__on_message
        self.__provision_request = provision_request

    def __on_connect(self, client, userdata, flags, rc):  # Callback for connect
        if rc == 0:
            print("[Provisioning client] Connected to ThingsBoard ")
            client.subscribe(self.PROVISION_RESPONSE_TOPIC)  # Subscribe to provisioning response topic
            provision_request = dumps(self.__provision_request)
            print("[Provisioning client] Sending provisioning request %s" % provision_request)
            client.publish(self.PROVISION_REQUEST_TOPIC, provision_request)  # Publishing provisioning request topic
        else:
            print("[Provisioning client] Cannot connect to ThingsBoard!, result: %s" % RESULT_CODES[rc])

    def __on_message(self, client, userdata, msg):
        decoded_payload = msg.payload.decode("UTF-8")
        print("[Provisioning client] Received data from ThingsBoard: %s" % decoded_payload)
        decoded_message = loads(decoded_payload)
        provision_device_status = decoded_message.get("status")
        if provision_device_status == "SUCCESS":
            self.__save_credentials(decoded_message["credentialsValue"])
        else:
            print("[Provisioning client] Provisioning was unsuccessful with status %s and message: %s" % (provision_device_status, decoded_message["errorMsg"]))
        self.disconnect()

    def provision(self):
        print("[Provisioning client] Connecting to ThingsBoard (provisioning client)")
        self.__clean_credentials()
        self.connect(self._host, self._port, 60)
        self.loop_forever()

    def get_new_client(self):
        client_credentials = self.__get_credentials()
        new_client = None
        if client_credentials:
            new_client = Client()
            new_client.username_pw_set(client_credentials)
            print("[Provisioning client] Read credentials from file.")
        else:
            print("[Provisioning client] Cannot read credentials from file!")
        return new_client

    @staticmethod
    def __get_credentials():
        new_credentials = None
        try:
            with open("credentials", "r") as credentials_file:
                new_credentials = credentials_file.read()
        except Exception as e:
            print(e)
        return new_credentials

    @staticmethod
    def __save_credentials(credentials):
        with open("credentials", "w") as credentials_file:
            credentials_file.write(credentials)

    @staticmethod
    def __clean_credentials():
        open("credentials", "w").close()


def on_tb_connected(client, userdata, flags, rc):  # Callback for connect with received credentials
    if rc == 0:
        print("[ThingsBoard client] Connected to ThingsBoard with credentials: %s" % client._username)
    else:
        print("[ThingsBoard client] Cannot connect to ThingsBoard!, result: %s" % RESULT_CODES[rc])


if __name__ == '__main__':
    provision_client = ProvisionClient(THINGSBOARD_HOST, THINGSBOARD_PORT, PROVISION_REQUEST)
    provision_client.provision()  # Request provisioned data
    tb_client = provision_client.get_new_client()  # Getting client with provisioned data
    if tb_client:
        tb_client.on_connect = on_tb_connected  # Setting callback for connect
        tb_client.connect(THINGSBOARD_HOST, THINGSBOARD_PORT, 60)
        tb_client.loop_forever()  # Starting infinity loop
    else:
        print("Client was not created!")
`;
}
