package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/provision"
)

func newLsCmd(a *app) *cobra.Command {
	var o rpcOptions
	var long bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the files on the device",
		Long: "List the files on the device's file system (FS.List), with their sizes when\n" +
			"-l is given. The board is not reset.",
		Example: "  mos ls --port /dev/ttyUSB0\n" +
			"  mos ls -l --port /dev/ttyUSB0",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				if !long {
					names, err := s.List(ctx, "")
					if err != nil {
						return err
					}
					return a.out.Print(lsResult{names: names})
				}
				files, err := s.ListExt(ctx, "")
				if err != nil {
					return err
				}
				return a.out.Print(lsResult{files: files, long: true})
			})
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show sizes")
	o.addFlags(cmd, a)
	return cmd
}

type lsResult struct {
	names []string
	files []provision.FileInfo
	long  bool
}

func (r lsResult) Data() any {
	if r.long {
		return r.files
	}
	return r.names
}

func (r lsResult) Text() string {
	if !r.long {
		return strings.Join(r.names, "\n")
	}
	width := 1
	for _, f := range r.files {
		width = max(width, len(strconv.FormatInt(f.Size, 10)))
	}
	var b strings.Builder
	for _, f := range r.files {
		fmt.Fprintf(&b, "%*d  %s\n", width, f.Size, f.Name)
	}
	return b.String()
}

// transferProgress shows an upload or download on the printer's bar.
func transferProgress(a *app, stage, name string) provision.Progress {
	bar := a.out.Progress()
	return func(done, total int64) {
		bar.Report(output.ProgressEvent{Stage: stage, Part: name, Done: done, Total: total})
	}
}

func newGetCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "get FILE [LOCAL]",
		Short: "Copy a file from the device (to stdout without LOCAL)",
		Long: "Copy FILE from the device's file system to LOCAL, or to stdout when LOCAL is\n" +
			"not given. LOCAL is checked before the download starts and written only when\n" +
			"the whole file has arrived.",
		Example: "  mos get --port /dev/ttyUSB0 conf9.json\n" +
			"  mos get --port /dev/ttyUSB0 index.html ./index.html",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				if err := checkOutputFile(args[1]); err != nil {
					return usageErr(cmd, err)
				}
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				start := time.Now()
				data, err := s.Get(ctx, args[0], transferProgress(a, "downloading", args[0]))
				if err != nil {
					return err
				}
				res := getResult{File: args[0], Size: len(data), Seconds: time.Since(start).Seconds()}
				if len(args) == 2 {
					if err := os.WriteFile(args[1], data, 0o644); err != nil {
						return err
					}
					res.Local = args[1]
					return a.out.Print(res)
				}
				if !a.out.JSON() {
					_, err := a.out.Out().Write(data)
					return err
				}
				if utf8.Valid(data) {
					res.Content = string(data)
				} else {
					res.ContentBase64 = base64.StdEncoding.EncodeToString(data)
				}
				return a.out.Print(res)
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

type getResult struct {
	File          string  `json:"file"`
	Local         string  `json:"local,omitempty"`
	Size          int     `json:"size"`
	Seconds       float64 `json:"seconds"`
	Content       string  `json:"content,omitempty"`        // without LOCAL, when the file is text
	ContentBase64 string  `json:"content_base64,omitempty"` // without LOCAL, otherwise
}

func (r getResult) Data() any { return r }
func (r getResult) Text() string {
	return fmt.Sprintf("%s: %d bytes into %s in %.1f s", r.File, r.Size, r.Local, r.Seconds)
}

func newPutCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "put LOCAL [REMOTE]",
		Short: "Copy a file to the device (under its own name without REMOTE)",
		Example: "  mos put --port /dev/ttyUSB0 index.html\n" +
			"  mos put --port /dev/ttyUSB0 build/app.js www/app.js",
		Long: "Copy a file to the device. It is written under a temporary name and renamed\n" +
			"when complete, so an interrupted upload never leaves a partial file under\n" +
			"the real name.",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			remote := filepath.Base(args[0])
			if len(args) == 2 {
				remote = args[1]
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				start := time.Now()
				if err := s.Put(ctx, remote, data, transferProgress(a, "uploading", remote)); err != nil {
					return err
				}
				return a.out.Print(putResult{File: remote, Size: len(data), Seconds: time.Since(start).Seconds()})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

type putResult struct {
	File    string  `json:"file"`
	Size    int     `json:"size"`
	Seconds float64 `json:"seconds"`
}

func (r putResult) Data() any { return r }
func (r putResult) Text() string {
	return fmt.Sprintf("%s: %d bytes written in %.1f s", r.File, r.Size, r.Seconds)
}

func newRmCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:     "rm FILE",
		Short:   "Delete a file on the device",
		Long:    "Delete FILE from the device's file system (FS.Remove).",
		Example: "  mos rm --port /dev/ttyUSB0 old.json",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				if err := s.Remove(ctx, args[0]); err != nil {
					return err
				}
				return a.out.Print(rmResult{File: args[0], Removed: true})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

type rmResult struct {
	File    string `json:"file"`
	Removed bool   `json:"removed"`
}

func (r rmResult) Data() any    { return r }
func (r rmResult) Text() string { return r.File + ": removed" }
