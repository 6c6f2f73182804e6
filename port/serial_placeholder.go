package port

// Placeholder until serial.go lands (delete this file then).

import "errors"

func openSerial(path string, baud int) (Port, error) {
	return nil, errors.New("serial ports not implemented yet")
}

// List returns the local serial ports (placeholder until list.go lands).
func List() ([]Info, error) { return nil, nil }
