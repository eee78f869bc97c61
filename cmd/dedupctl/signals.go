package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interruptible returns a context that the first SIGINT or SIGTERM
// cancels, so the run stops where it can and cleans up. A second signal
// exits at once with 128 + the signal number: some waits cannot be
// cancelled (a read from a FIFO, a slow server), and an operator or a
// service manager asking twice must not be ignored. stop releases the
// signals.
func interruptible(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
			fmt.Fprintln(stderr, "dedupctl: interrupted; stopping (interrupt again to exit at once)")
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintln(stderr, "dedupctl: interrupted again; exiting now")
			code := 128 + int(syscall.SIGINT)
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			exit(code)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
