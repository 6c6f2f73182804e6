// Package broker runs an embedded MQTT broker with mutual TLS for a fleet CA
// (built on github.com/mochi-mqtt/server/v2) and writes mosquitto
// configurations for the same CA. It prints nothing.
package broker
