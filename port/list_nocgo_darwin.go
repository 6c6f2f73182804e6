//go:build !cgo

package port

import "go.bug.st/serial"

// platformPorts lists names only: go.bug.st/serial/enumerator needs cgo
// (IOKit) on macOS, and a cross-compiled mos has no cgo.
func platformPorts() ([]portDetails, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, err
	}
	ports := make([]portDetails, len(names))
	for i, name := range names {
		ports[i] = portDetails{Name: name}
	}
	return ports, nil
}
