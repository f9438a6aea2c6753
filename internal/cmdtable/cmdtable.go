// Package cmdtable is the subcommand dispatch shared by vigil
// (internal/cli) and vigil-central (internal/centralcli): a table with one
// entry per command, the exit-code rules of a program's top level, and the
// flag and log helpers every command starts with. It imports the standard
// library only, so the cgo-free central build can use it.
package cmdtable

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// Func runs one command; args are what follows its name.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Command is one entry of a table.
type Command struct {
	// Names are what selects the command; the first names it in error
	// messages, the others are aliases.
	Names []string
	Run   Func
}

// Table dispatches on the first argument.
type Table struct {
	Commands []Command
	// Default, if set, runs with all of args when they name no command
	// (or are empty); otherwise Find reports an *UnknownError.
	Default *Command
}

// UnknownError is args naming no command of a table without a Default.
type UnknownError struct {
	Name string // "" when args were empty
}

func (e *UnknownError) Error() string {
	if e.Name == "" {
		return "no command given"
	}
	return fmt.Sprintf("unknown command %q", e.Name)
}

// ErrUsage is returned by a command that has printed its usage to stderr
// because its arguments make no sense: the program exits 2.
var ErrUsage = errors.New("bad usage")

// Find picks the command for args: the one args[0] names, to run with the
// rest of args, else Default with all of them.
func (t Table) Find(args []string) (Command, []string, error) {
	if len(args) > 0 {
		for _, c := range t.Commands {
			if slices.Contains(c.Names, args[0]) {
				return c, args[1:], nil
			}
		}
	}
	if t.Default != nil {
		return *t.Default, args, nil
	}
	if len(args) == 0 {
		return Command{}, nil, &UnknownError{}
	}
	return Command{}, nil, &UnknownError{Name: args[0]}
}

// Run runs the command args select (Find).
func (t Table) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, rest, err := t.Find(args)
	if err != nil {
		return err
	}
	return c.Run(ctx, rest, stdout, stderr)
}

// Program is a binary's top level: its commands, plus version and help.
type Program struct {
	Name    string // "vigil": "vigil edge: <error>", "vigil 0.1.0"
	Version string
	Usage   string // help's text; also printed to stderr for no or an unknown command
	Table
}

// Main runs the command args select, cancelled by SIGINT or SIGTERM, and
// returns the process exit code: 0 (also after -h), 1 for an error, which
// it prints as "<program> <command>: <error>", 2 for bad usage.
func (p Program) Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-v":
			fmt.Fprintln(stdout, p.Name, p.Version)
			return 0
		case "help", "-h", "--help":
			fmt.Fprint(stdout, p.Usage)
			return 0
		}
	}
	c, rest, err := p.Find(args)
	var unknown *UnknownError
	if errors.As(err, &unknown) {
		if unknown.Name == "" {
			fmt.Fprint(stderr, p.Usage)
		} else {
			fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", p.Name, unknown.Name, p.Usage)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return p.exitCode(c.Names[0], c.Run(ctx, rest, stdout, stderr), stderr)
}

func (p Program) exitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, name, err)
	return 1
}

// NewFlagSet is the flag set of `vigil <name>`, reporting to stderr.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// NewFlags is NewFlagSet with the --log-level flag every long-running
// command has (see NewLogger).
func NewFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := NewFlagSet(name, stderr)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	return fs, level
}

// NewLogger logs text to w at level (a --log-level value).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// List is a repeatable string flag.
type List []string

func (l *List) String() string     { return strings.Join(*l, ",") }
func (l *List) Set(v string) error { *l = append(*l, v); return nil }
