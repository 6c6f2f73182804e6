package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The esptool-js side runs under Node with the packages the interop tests
// pin (interop/node, installed by `make interop-deps`).
const (
	jsScript  = "bench/esptooljs-write.mjs"
	jsPackage = "interop/node/node_modules/esptool-js/package.json"
)

type jsRun struct {
	d     time.Duration
	steps []phase
}

// findNode checks that esptool-js can run: the bench is run from the
// repository root (make bench) with the npm packages installed.
func findNode() (string, error) {
	if _, err := os.Stat(jsScript); err != nil {
		return "", fmt.Errorf("%s not found: run from the repository root (make bench)", jsScript)
	}
	if _, err := os.Stat(jsPackage); err != nil {
		return "", fmt.Errorf("esptool-js is not installed (%s missing): run `make interop-deps`", filepath.Dir(jsPackage))
	}
	return exec.LookPath("node")
}

// flashJS runs esptool-js against the device at hostPort. The time is the
// script's own, from opening the port to the verified write, so Node's
// start-up is not counted against it.
func flashJS(ctx context.Context, node, hostPort, imgPath string, addr uint32, baud int) (*jsRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, jsScript, "--port", hostPort, "--baud", fmt.Sprint(baud),
		"--image", imgPath, "--addr", fmt.Sprintf("0x%x", addr))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		OK      bool   `json:"ok"`
		TotalMS int64  `json:"totalMs"`
		Error   string `json:"error"`
		Steps   []struct {
			Step string `json:"step"`
			MS   int64  `json:"ms"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || !res.OK {
		why := res.Error
		if err != nil {
			why = fmt.Sprintf("%v; no JSON result (%v)", runErr, err)
		}
		return nil, fmt.Errorf("esptool-js at %d baud: %s\n%s", baud, why, tail(stderr.String(), 20))
	}
	r := &jsRun{d: time.Duration(res.TotalMS) * time.Millisecond}
	for _, s := range res.Steps {
		r.steps = append(r.steps, phase{name: s.Step, d: time.Duration(s.MS) * time.Millisecond})
	}
	return r, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
