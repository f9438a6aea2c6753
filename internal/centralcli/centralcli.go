// Package centralcli holds vigil's central-side subcommands: `vigil
// central` (run, user, backup, restore, audit verify, migrate) and `vigil
// evidence` (verify, pubkey). internal/cli dispatches to it for the full
// binary, cmd/vigil-central for the central-only one. It must not import
// edge or streams packages: central builds without cgo (no FFmpeg or
// OpenCV), which cmd/vigil-central's test and `make central-nocgo` check.
package centralcli

import (
	"context"
	"io"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/internal/sdnotify"
)

// Version is the software version reported everywhere.
const Version = "0.1.0"

// centralCommands are `vigil central`'s subcommands; anything else runs
// central.
var centralCommands = cmdtable.Table{
	Commands: []cmdtable.Command{
		{Names: []string{"user"}, Run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runCentralUser(args, stdout, stderr)
		}},
		{Names: []string{"backup"}, Run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runCentralBackup("backup", args, stdout, stderr)
		}},
		{Names: []string{"restore"}, Run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runCentralBackup("restore", args, stdout, stderr)
		}},
		{Names: []string{"audit"}, Run: runCentralAudit},
		{Names: []string{"migrate"}, Run: runCentralMigrate},
	},
	Default: &cmdtable.Command{Names: []string{"central"}, Run: func(ctx context.Context, args []string, _, stderr io.Writer) error {
		return runCentral(ctx, args, stderr)
	}},
}

// Central runs `vigil central ARGS...`: args are what follows "central".
func Central(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return centralCommands.Run(ctx, args, stdout, stderr)
}

// Evidence runs `vigil evidence ARGS...`: args are what follows "evidence".
func Evidence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEvidence(ctx, args, stdout, stderr)
}

const usage = `usage: vigil-central [central] [flags]            run central (alert store, console, edge hub)
       vigil-central [central] user ...           add, list or hash console users
       vigil-central [central] backup|restore ... copy central's data (stopped) to a file, or back
       vigil-central [central] audit verify ...   check central's hash-chained audit log (stopped)
       vigil-central [central] migrate ...        move central's data from data_dir into PostgreSQL (stopped)
       vigil-central evidence verify|pubkey ...   verify a bundle offline; print the evidence public key
       vigil-central version

vigil-central is the central-only build of vigil (no edge, no video
decoding, built without cgo): the same commands as 'vigil central ...'
and 'vigil evidence ...'. Run 'vigil-central <command> -h' for flags.
`

// program is vigil-central: the central subcommands (the default), plus
// evidence, version and help.
var program = cmdtable.Program{Name: "vigil-central", Version: Version, Usage: usage, Table: cmdtable.Table{
	Commands: []cmdtable.Command{{Names: []string{"evidence"}, Run: Evidence}},
	Default:  &cmdtable.Command{Names: []string{"central"}, Run: Central},
}}

// Main is cmd/vigil-central's whole program: the central subcommands,
// with or without a leading "central", plus evidence and version. It
// returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "central" {
		args = args[1:]
	}
	return program.Main(args, stdout, stderr)
}

func runCentral(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("central", stderr)
	path := fs.String("config", "central.yaml", "central configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := cmdtable.NewLogger(stderr, *level)
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
