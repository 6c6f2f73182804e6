// Package cloud registers devices with an MQTT broker and the fleet CA
// (RegisterMQTT) or with AWS IoT (RegisterAWS, DeregisterAWS): the device makes its
// key and a CSR, the certificate comes back, goes onto the device with the
// broker's settings, and the device is watched until it reports that it
// connected. Device I/O goes through the Device interface; the package
// prints nothing (progress goes to a callback).
package cloud
