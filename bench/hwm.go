package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// hwmWatcher polls a running process's peak resident set (VmHWM in
// /proc/PID/status, Linux). The child's rusage cannot be used for this:
// on Linux a child forked from a large parent reports the parent's
// resident set as its maximum, which here is the virtual device's 16 MiB
// flash and more. VmHWM belongs to the process image after exec.
type hwmWatcher struct {
	peak atomic.Int64 // bytes
	stop chan struct{}
	done chan struct{}
}

func watchHWM(pid int) *hwmWatcher {
	w := &hwmWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := readHWM(pid); ok && v > w.peak.Load() {
				w.peak.Store(v)
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the polling and returns the highest peak seen (0: none).
func (w *hwmWatcher) Stop() int64 {
	close(w.stop)
	<-w.done
	return w.peak.Load()
}

func readHWM(pid int) (int64, bool) { return readStatusBytes(fmt.Sprint(pid), "VmHWM:") }

// readStatusBytes reads a size field ("VmHWM:", "VmRSS:") of
// /proc/PID/status ("self" for this process), in bytes.
func readStatusBytes(pid, field string) (int64, bool) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
