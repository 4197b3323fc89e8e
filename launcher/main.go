// Command launcher prepares and starts earl jobs: it turns audio QA datasets
// into HDF5 feature shards (shard) and describes shard directories
// (inspect). See README.md for the full usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/urfave/cli/v2"

	"earl/launcher/argorder"
)

func main() {
	app := &cli.App{
		Name:  "launcher",
		Usage: "prepare and launch earl jobs",
		Commands: []*cli.Command{
			shardCommand(),
			inspectCommand(),
			runCommand(),
			sbatchCommand(),
			evalCommand(),
			exportCommand(),
			reportCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
	}
	if p := os.Getenv("EARL_CPUPROFILE"); p != "" {
		stopProfile, err := startCPUProfile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "launcher:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.RunContext(ctx, argorder.FlagsFirst(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		stopProfiles()
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

var profileStops []func()

// startCPUProfile writes a pprof CPU profile of the whole run to path
// (EARL_CPUPROFILE), for finding where shard time goes.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	stop := func() { pprof.StopCPUProfile(); f.Close() }
	profileStops = append(profileStops, stop)
	return stop, nil
}

// stopProfiles flushes profiles before an early os.Exit.
func stopProfiles() {
	for _, s := range profileStops {
		s()
	}
}
