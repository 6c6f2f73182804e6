package sim

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/mos-tool/mos/rfc2217"
)

// ServeRFC2217 lets RFC 2217 clients use the device over TCP, with baud
// rate and the DTR and RTS lines passed through change by change, as a
// plain ser2net would: the reference a test compares mos's client against.
// One client at a time: others are disconnected at once, as a busy port
// refuses them. It returns when ctx ends or ln fails.
//
// `mos serve` and `mos sim serve` use package serve instead, which plays
// ESP reset sequences on the port so that esptool can reset the board over
// a network; this package cannot import it (serve builds on port, which
// builds on sim).
func (d *Device) ServeRFC2217(ctx context.Context, ln net.Listener) error {
	return d.serve(ctx, ln, func(conn net.Conn, hp *HostPort) (io.ReadWriter, error) {
		return rfc2217.NewServerConn(conn, serverHandler{hp}, hp.BaudRate())
	})
}

// ServeRaw serves the device's UART as a plain TCP byte stream at a fixed
// baud rate: no control lines and no baud changes, like a raw socket
// serial server. A device that changes its own baud rate becomes garbage
// to such a client, as it would on a real raw port.
func (d *Device) ServeRaw(ctx context.Context, ln net.Listener, baud int) error {
	return d.serve(ctx, ln, func(conn net.Conn, hp *HostPort) (io.ReadWriter, error) {
		if err := hp.SetBaudRate(baud); err != nil {
			return nil, err
		}
		return conn, nil
	})
}

func (d *Device) serve(ctx context.Context, ln net.Listener, wrap func(net.Conn, *HostPort) (io.ReadWriter, error)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		hp, err := d.Connect()
		if err != nil {
			conn.Close() // busy: one client at a time
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.session(ctx, conn, hp, wrap)
		}()
	}
}

// session pumps bytes between one client and the device until either ends.
func (d *Device) session(ctx context.Context, conn net.Conn, hp *HostPort, wrap func(net.Conn, *HostPort) (io.ReadWriter, error)) {
	defer hp.Close()
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rw, err := wrap(conn, hp)
	if err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { // client -> device
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				if _, werr := hp.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // device -> client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 4096)
		for {
			n, err := hp.Read(buf)
			if n > 0 {
				if _, werr := rw.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil && !errors.Is(err, ErrReadTimeout) {
				return
			}
		}
	}()
	<-done
	conn.Close()
	hp.Close()
	<-done
}

// serverHandler applies a client's RFC 2217 settings to the host port.
type serverHandler struct{ hp *HostPort }

func (h serverHandler) SetBaud(baud int) error { return h.hp.SetBaudRate(baud) }
func (h serverHandler) SetDTR(on bool) error   { return h.hp.SetDTR(on) }
func (h serverHandler) SetRTS(on bool) error   { return h.hp.SetRTS(on) }
func (h serverHandler) Purge(rx, tx bool) error {
	if rx {
		return h.hp.ResetInputBuffer()
	}
	return nil
}
