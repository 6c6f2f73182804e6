//go:build !darwin || cgo

package port

import "go.bug.st/serial/enumerator"

// platformPorts asks go.bug.st/serial/enumerator. No active USB probe filter
// is passed: probing can disturb a device in use, and on Linux every field
// comes from sysfs anyway (elsewhere Product may then stay empty).
func platformPorts() ([]portDetails, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, err
	}
	ports := make([]portDetails, 0, len(list))
	for _, d := range list {
		if d == nil {
			continue
		}
		ports = append(ports, portDetails{
			Name:         d.Name,
			IsUSB:        d.IsUSB,
			VID:          d.VID,
			PID:          d.PID,
			SerialNumber: d.SerialNumber,
			Product:      d.Product,
		})
	}
	return ports, nil
}
