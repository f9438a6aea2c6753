// Package centralcli holds vigil's central-side subcommands: `vigil
// central` (run, user, backup, restore, audit verify) and `vigil
// evidence` (verify, pubkey). internal/cli dispatches to it for the full
// binary, cmd/vigil-central for the central-only one. It must not import
// edge or streams packages: central builds without cgo (no FFmpeg or
// OpenCV), which cmd/vigil-central's test and `make central-nocgo` check.
package centralcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/internal/sdnotify"
)

// Version is the software version reported everywhere.
const Version = "0.1.0"

// Central runs `vigil central ARGS...`: args are what follows "central".
func Central(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) >= 1 && args[0] == "user":
		return runCentralUser(args[1:], stdout, stderr)
	case len(args) >= 1 && (args[0] == "backup" || args[0] == "restore"):
		return runCentralBackup(args[0], args[1:], stdout, stderr)
	case len(args) >= 1 && args[0] == "audit":
		return runCentralAudit(ctx, args[1:], stdout, stderr)
	}
	return runCentral(ctx, args, stderr)
}

// Evidence runs `vigil evidence ARGS...`: args are what follows "evidence".
func Evidence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEvidence(ctx, args, stdout, stderr)
}

const usage = `usage: vigil-central [central] [flags]            run central (alert store, console, edge hub)
       vigil-central [central] user ...           add, list or hash console users
       vigil-central [central] backup|restore ... copy central's data (stopped) to a file, or back
       vigil-central [central] audit verify ...   check central's hash-chained audit log (stopped)
       vigil-central evidence verify|pubkey ...   verify a bundle offline; print the evidence public key
       vigil-central version

vigil-central is the central-only build of vigil (no edge, no video
decoding, built without cgo): the same commands as 'vigil central ...'
and 'vigil evidence ...'. Run 'vigil-central <command> -h' for flags.
`

// Main is cmd/vigil-central's whole program: the central subcommands,
// with or without a leading "central", plus evidence and version. It
// returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "central" {
		args = args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	name := "central"
	var err error
	switch {
	case len(args) > 0 && args[0] == "evidence":
		name = "evidence"
		err = Evidence(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-v"):
		fmt.Fprintln(stdout, "vigil-central", Version)
	case len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
	default:
		err = Central(ctx, args, stdout, stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil-central %s: %v\n", name, err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	return fs, level
}

func runCentral(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := newFlags("central", stderr)
	path := fs.String("config", "central.yaml", "central configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := central.LoadConfig(*path)
	if err != nil {
		return err
	}
	srv, err := central.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	log.Info("central running", "console", "http://"+srv.Addr())
	sd := sdnotify.FromEnv()
	sd.Notify("READY=1")
	go sd.KeepAlive(ctx, srv.Healthy, log)
	<-ctx.Done()
	sd.Notify("STOPPING=1")
	return srv.Close()
}
