package demofw

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The demo's MQTT client, as Mongoose OS's mqtt library runs it: at boot,
// when mqtt.enable is set and the station has an address, it connects to
// mqtt.server (TLS 1.2+ when mqtt.ssl_cert or mqtt.ssl_ca_cert is set, the
// client key from mqtt.ssl_key: a file of the store or "ATCA:<slot>", the
// crypto chip), then
//
//   - publishes a hello on <base>/events and telemetry there every
//     telemetryEvery,
//   - subscribes to <base>/commands and answers each command on
//     <base>/replies,
//   - reconnects after a lost connection or a failed attempt, waiting
//     mqtt.reconnect_timeout_min seconds, doubling up to
//     mqtt.reconnect_timeout_max.
//
// <base> is "devices/<client id>", or the thing name when aws.thing_name is
// set (AWS IoT policies scope topics by thing name). The client id is
// mqtt.client_id, else aws.thing_name, else device.id, as mgos's mqtt and
// aws libraries choose it. So a broker's per-client ACL such as mosquitto's
// `pattern readwrite devices/%u/#` (certificate CN = device id) or `%c`
// admits exactly this device's topics.
//
// The virtual device's Wi-Fi is modelled, but its IP traffic to the MQTT
// broker is real TCP: it reaches the host's loopback addresses and nothing
// else, so tests and demos talk to real brokers run on the host.
//
// Log lines follow mgos_mqtt_conn.c's messages ("MQTT0 connecting to ...");
// the line numbers are illustrative.

// telemetryEvery is how often the demo publishes telemetry.
const telemetryEvery = 30 * time.Second

// mqttState is what MQTT.Status reports.
type mqttState struct {
	mu        sync.Mutex
	connected bool
	broker    string
	clientID  string
	lastError string
}

func (s *mqttState) set(f func(s *mqttState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func mqttStatus(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	fw.mqtt.mu.Lock()
	defer fw.mqtt.mu.Unlock()
	return printfJSON(struct {
		Enabled   bool   `json:"enabled"`
		Connected bool   `json:"connected"`
		Broker    string `json:"broker"`
		ClientID  string `json:"client_id"`
		LastError string `json:"last_error"`
	}{fw.cfg.Bool("mqtt.enable"), fw.mqtt.connected, fw.mqtt.broker, fw.mqtt.clientID, fw.mqtt.lastError}), nil
}

func (fw *demoFirmware) mqttClientID() string {
	for _, k := range []string{"mqtt.client_id", "aws.thing_name", "device.id"} {
		if v := fw.cfg.String(k); v != "" {
			return v
		}
	}
	return ""
}

// mqttTopicBase is the prefix of the device's own topics.
func (fw *demoFirmware) mqttTopicBase() string {
	if t := fw.cfg.String("aws.thing_name"); t != "" {
		return t
	}
	return "devices/" + fw.mqttClientID()
}

// mqttStart starts the client in the background when it is enabled.
func (fw *demoFirmware) mqttStart() {
	if !fw.cfg.Bool("mqtt.enable") {
		return
	}
	server, id := fw.cfg.String("mqtt.server"), fw.mqttClientID()
	fw.mqtt.set(func(s *mqttState) { s.broker, s.clientID = server, id })
	fw.goAsync(fw.mqttRun)
}

// mqttRun connects, serves the connection, and reconnects with backoff,
// until the run ends.
func (fw *demoFirmware) mqttRun() {
	if !fw.waitOnline() {
		return
	}
	lo := time.Duration(fw.cfgFloat("mqtt.reconnect_timeout_min") * float64(time.Second))
	hi := time.Duration(fw.cfgFloat("mqtt.reconnect_timeout_max") * float64(time.Second))
	lo = max(lo, 100*time.Millisecond)
	hi = max(hi, lo)
	wait := lo
	for {
		connected, err := fw.mqttSession()
		if fw.ctx.Err() != nil {
			return
		}
		fw.mqtt.set(func(s *mqttState) {
			s.connected = false
			if err != nil {
				s.lastError = err.Error()
			}
		})
		if err != nil {
			fw.logf(logError, "mgos_mqtt_conn.c:240", "MQTT0 %v", err)
		}
		fw.logf(logInfo, "mgos_mqtt_conn.c:310", "MQTT0 Disconnect")
		if connected {
			wait = lo // the backoff starts again after a good connection
		}
		fw.logf(logInfo, "mgos_mqtt_conn.c:470", "MQTT0 connecting after %d ms", wait.Milliseconds())
		if fw.pause(wait) != nil {
			return
		}
		wait = min(wait*2, hi)
	}
}

func (fw *demoFirmware) cfgFloat(path string) float64 {
	f, _ := fw.cfg.value(path, maxLevel).(float64)
	return f
}

// waitOnline waits until the station has an address (the mqtt library
// connects on the network's "IP acquired" event).
func (fw *demoFirmware) waitOnline() bool {
	for {
		if st, _, _ := fw.wifi.get(); st == "got ip" {
			return true
		}
		if fw.pause(500*time.Millisecond) != nil {
			return false
		}
	}
}

// mqttCommand is a message on the command topic.
type mqttCommand struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Cmd    string          `json:"cmd"`
	Config json.RawMessage `json:"config,omitempty"`
}

// mqttSession is one connection: from connecting to its loss. connected
// says whether the broker accepted it.
func (fw *demoFirmware) mqttSession() (connected bool, err error) {
	server := fw.cfg.String("mqtt.server")
	id := fw.mqttClientID()
	fw.task.Lock() // the file store belongs to the firmware's task
	tlsConf, err := fw.mqttTLS(server)
	fw.task.Unlock()
	if err != nil {
		return false, err
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		port := "1883"
		if tlsConf != nil {
			port = "8883"
		}
		server = net.JoinHostPort(server, port)
	}
	fw.logf(logInfo, "mgos_mqtt_conn.c:435", "MQTT0 connecting to %s", server)
	lost := make(chan error, 1)
	cmds := make(chan paho.Message, 8)
	timeout := 10 * time.Second
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + server).
		SetClientID(id).
		SetUsername(fw.cfg.String("mqtt.user")).
		SetPassword(fw.cfg.String("mqtt.pass")).
		SetCleanSession(fw.cfg.Bool("mqtt.clean_session")).
		SetKeepAlive(time.Duration(fw.cfg.Int("mqtt.keep_alive")) * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(timeout).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			return fw.mqttDial(u.Host, tlsConf, timeout)
		})
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(timeout + time.Second) {
		c.Disconnect(0)
		return false, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return false, fmt.Errorf("connect failed: %w", err)
	}
	defer c.Disconnect(100)
	fw.logf(logInfo, "mgos_mqtt_conn.c:154", "MQTT0 CONNACK 0")
	fw.mqtt.set(func(s *mqttState) { s.connected, s.lastError = true, "" })

	base := fw.mqttTopicBase()
	sub := c.Subscribe(base+"/commands", 1, func(_ paho.Client, m paho.Message) {
		select {
		case cmds <- m:
		default: // the queue is full: drop, as a busy device does
		}
	})
	if !sub.WaitTimeout(timeout) || sub.Error() != nil {
		return true, fmt.Errorf("subscribe to %s/commands failed: %v", base, sub.Error())
	}
	fw.logf(logInfo, "mgos_mqtt_conn.c:190", "MQTT0 sub %s/commands @ 1", base)
	if err := fw.mqttPublish(c, base+"/events", fw.helloPayload("hello")); err != nil {
		return true, err
	}
	tick := time.NewTicker(fw.async(telemetryEvery))
	defer tick.Stop()
	for {
		select {
		case <-fw.ctx.Done():
			return true, nil
		case err := <-lost:
			return true, fmt.Errorf("connection lost: %v", err)
		case <-tick.C:
			if err := fw.mqttPublish(c, base+"/events", fw.helloPayload("telemetry")); err != nil {
				return true, err
			}
		case m := <-cmds:
			reply := fw.mqttHandleCommand(m.Payload())
			if err := fw.mqttPublish(c, base+"/replies", reply); err != nil {
				return true, err
			}
		}
	}
}

func (fw *demoFirmware) mqttPublish(c paho.Client, topic string, payload []byte) error {
	fw.logf(logDebug, "mgos_mqtt.c:142", "Publishing to %s @ 1 (%d): [%s]", topic, len(payload), payload)
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("publish to %s timed out", topic)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish to %s failed: %w", topic, err)
	}
	return nil
}

// helloPayload is the hello and the telemetry the device publishes.
func (fw *demoFirmware) helloPayload(event string) []byte {
	status, ip, _ := fw.wifi.get()
	return printfJSON(struct {
		Event     string `json:"event"`
		ID        string `json:"id"`
		App       string `json:"app"`
		FwVersion string `json:"fw_version"`
		Uptime    int64  `json:"uptime"`
		RAMFree   int    `json:"ram_free"`
		WiFi      string `json:"wifi"`
		IP        string `json:"ip"`
	}{event, fw.deviceID(), fw.app.name, fw.app.version, int64(time.Since(fw.start) / time.Second),
		fw.ram.free, status, ip})
}

// mqttHandleCommand acts on one command and returns the reply:
//
//	{"cmd":"ping"}                       -> {"cmd":"ping","result":"pong"}
//	{"cmd":"config.set","config":{..}}   -> sets and saves the values (user level)
//	{"cmd":"reboot"}                     -> replies, then restarts
//
// An "id" in the command comes back in the reply.
func (fw *demoFirmware) mqttHandleCommand(payload []byte) []byte {
	type reply struct {
		ID     json.RawMessage `json:"id,omitempty"`
		Cmd    string          `json:"cmd"`
		Result any             `json:"result,omitempty"`
		Error  string          `json:"error,omitempty"`
	}
	var cmd mqttCommand
	if err := json.Unmarshal(payload, &cmd); err != nil {
		return printfJSON(reply{Error: "bad command: " + err.Error()})
	}
	fw.logf(logInfo, "mgos_mqtt.c:98", "MQTT command %q", cmd.Cmd)
	out := reply{ID: cmd.ID, Cmd: cmd.Cmd}
	fw.task.Lock() // commands run on the firmware's task, like RPC handlers
	defer fw.task.Unlock()
	switch cmd.Cmd {
	case "ping":
		out.Result = "pong"
	case "reboot":
		out.Result = "rebooting"
		fw.goAsync(func() {
			if fw.pause(configRebootDelay) == nil {
				fw.restartNow()
			}
		})
	case "config.set":
		vals, err := fw.cfg.parseSet("", cmd.Config)
		if err == nil {
			err = fw.cfg.validate(userLevel, vals)
		}
		if err == nil {
			fw.cfg.set(userLevel, vals)
			err = fw.saveConfig(userLevel, false)
		}
		if err != nil {
			out.Error = err.Error()
		} else {
			out.Result = map[string]bool{"saved": true}
		}
	default:
		out.Error = fmt.Sprintf("unknown command %q (ping, reboot, config.set)", cmd.Cmd)
	}
	return printfJSON(out)
}

// mqttDial opens the connection to the broker: real TCP, to a loopback
// address only, then the TLS handshake when TLS is configured.
func (fw *demoFirmware) mqttDial(hostport string, tlsConf *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(fw.ctx, timeout)
	defer cancel()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("bad port in %s", hostport)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("DNS lookup of %s failed", host)
	}
	var ip net.IP
	for _, a := range addrs {
		if a.IP.IsLoopback() {
			ip = a.IP
			break
		}
	}
	if ip == nil {
		return nil, fmt.Errorf("%s is not reachable: the virtual device's network reaches only the host's loopback addresses", host)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, fmt.Errorf("TCP connect to %s failed: %w", hostport, err)
	}
	fw.logf(logInfo, "mgos_mqtt_conn.c:262", "MQTT0 TCP connect ok (0)")
	if tlsConf == nil {
		return conn, nil
	}
	tc := tls.Client(conn, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s failed: %w", hostport, err)
	}
	fw.logf(logInfo, "mgos_mqtt_conn.c:270", "MQTT0 TLS %s, %s", tls.VersionName(tc.ConnectionState().Version), tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
	return tc, nil
}

// mqttTLS builds the TLS settings from mqtt.ssl_*: nil for plain TCP.
func (fw *demoFirmware) mqttTLS(server string) (*tls.Config, error) {
	certFile, keyRef, caFile := fw.cfg.String("mqtt.ssl_cert"), fw.cfg.String("mqtt.ssl_key"), fw.cfg.String("mqtt.ssl_ca_cert")
	if certFile == "" && caFile == "" {
		return nil, nil
	}
	host := server
	if h, _, err := net.SplitHostPort(server); err == nil {
		host = h
	}
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemData, err := fw.readFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ssl_ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("mqtt.ssl_ca_cert: %s holds no PEM certificate", caFile)
		}
		conf.RootCAs = pool
	}
	if certFile != "" {
		if keyRef == "" {
			return nil, errors.New("mqtt.ssl_cert is set but mqtt.ssl_key is not")
		}
		pemData, err := fw.readFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ssl_cert: %w", err)
		}
		var chain [][]byte
		for rest := pemData; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				chain = append(chain, b.Bytes)
			}
		}
		if len(chain) == 0 {
			return nil, fmt.Errorf("mqtt.ssl_cert: %s holds no PEM certificate", certFile)
		}
		leaf, err := x509.ParseCertificate(chain[0])
		if err != nil {
			return nil, fmt.Errorf("mqtt.ssl_cert: %w", err)
		}
		signer, err := fw.keySigner(keyRef)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ssl_key: %w", err)
		}
		type equaler interface{ Equal(x crypto.PublicKey) bool }
		if pk, ok := leaf.PublicKey.(equaler); !ok || !pk.Equal(signer.Public()) {
			return nil, fmt.Errorf("mqtt.ssl_cert %s is not the certificate of the key %s", certFile, keyRef)
		}
		conf.Certificates = []tls.Certificate{{Certificate: chain, PrivateKey: signer, Leaf: leaf}}
	}
	return conf, nil
}

// readFile reads a whole file of the store.
func (fw *demoFirmware) readFile(name string) ([]byte, error) {
	if fw.fs == nil {
		return nil, errNoFS
	}
	data, _, err := fw.fs.Read(fsName(name), 0, -1)
	if err != nil {
		return nil, fmt.Errorf("failed to open file %q", name)
	}
	return data, nil
}
