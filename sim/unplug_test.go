package sim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
)

// Unplugging fails the open port's reads, refuses new opens, and plugging
// back in powers the chip on again (its ROM banner is printed once more).
func TestUnplugReplug(t *testing.T) {
	url := "sim://esp32?fast=1&id=" + t.Name()
	p, dev := open(t, url)
	if got := readFor(p, 200*time.Millisecond); !strings.Contains(got, "rst:0x1") {
		t.Fatalf("no power-on banner before unplugging: %q", got)
	}
	p.SetReadTimeout(2 * time.Second)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := p.Read(buf); err != nil && !errors.Is(err, port.ErrTimeout) {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let the read block
	dev.Unplug()
	select {
	case err := <-done:
		var pe *port.Error
		if !errors.As(err, &pe) || pe.Kind != port.KindDisconnected {
			t.Fatalf("read after unplug: %v, want a port.Error of kind disconnected", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a blocked read did not return when the device was unplugged")
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Fatal("write to an unplugged device succeeded")
	}
	p.Close()

	_, err := port.Open(context.Background(), url, 115200)
	var pe *port.Error
	if !errors.As(err, &pe) || pe.Kind != port.KindNotFound {
		t.Fatalf("open while unplugged: %v, want a port.Error of kind not found", err)
	}

	dev.Replug()
	p2, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatalf("open after replug: %v", err)
	}
	defer p2.Close()
	if got := readFor(p2, 300*time.Millisecond); !strings.Contains(got, "rst:0x1") {
		t.Fatalf("no power-on banner after replug: %q", got)
	}
	dev.Close()
}
