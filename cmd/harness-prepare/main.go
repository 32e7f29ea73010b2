// Command harness-prepare builds or removes what the harness needs, ahead of a run:
//
//	harness-prepare minio    build the pinned MinIO into the cache (minutes, once)
//	harness-prepare mailpit  build the pinned mail catcher into the cache
//	harness-prepare tools    both of the above
//	harness-prepare images   build the programs and the docker images
//	harness-prepare clean    remove every harness container, network, volume and image
//
// The tests build all of this on demand; these are for warming a machine up and for
// cleaning one down.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/fixtures/mailcatcher"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/sandbox"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: harness-prepare minio|mailpit|tools|images|clean")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var err error
	switch os.Args[1] {
	case "minio":
		err = printPath(minioserver.Binary(ctx, os.Stderr))
	case "mailpit":
		err = printPath(mailcatcher.Binary(ctx, os.Stderr))
	case "tools":
		if err = printPath(minioserver.Binary(ctx, os.Stderr)); err == nil {
			err = printPath(mailcatcher.Binary(ctx, os.Stderr))
		}
	case "images":
		err = fixtures.PrepareImages(ctx, log)
	case "clean":
		if !sandbox.Available(ctx) {
			fmt.Fprintln(os.Stderr, "harness-prepare: no docker daemon answers; nothing to clean")
			return
		}
		err = sandbox.Sweep(ctx, sandbox.WithAllRuns(), sandbox.WithLogger(log))
	default:
		fmt.Fprintf(os.Stderr, "harness-prepare: unknown command %q; want minio, mailpit, "+
			"tools, images or clean\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness-prepare: %v\n", err)
		os.Exit(1)
	}
}

func printPath(path string, err error) error {
	if err == nil {
		fmt.Println(path)
	}
	return err
}
