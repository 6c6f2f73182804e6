// Package cloud will register devices with AWS IoT or an own MQTT broker
// and CA. It does no device I/O. Nothing is implemented yet; see the
// project's issues.
package cloud
