package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

const publishUsage = `usage:
  hipersync publish <subject> --file FILE    (FILE "-" reads stdin)
    publishes FILE's JSON as a store platform's plain NATS client would, e.g.
    hipersync publish store.demo.order.approved --file order.json`

// runPublish publishes a JSON event with nothing but a Content-Type header:
// what a store written in any language does with a plain NATS client.
func runPublish(ctx context.Context, e Env, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	file := fs.String("file", "", "the JSON body; - for stdin")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *file == "" {
		return usagef("publish: want a subject and --file\n%s", publishUsage)
	}
	var body []byte
	if *file == "-" {
		body, err = io.ReadAll(io.LimitReader(e.Stdin, 1<<20))
	} else {
		body, err = os.ReadFile(*file)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", *file, err)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%s is not JSON", *file)
	}
	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: pos[0], Header: nats.Header{"Content-Type": []string{"application/json"}}, Data: body}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", pos[0], err)
	}
	if *asJSON {
		return writeJSON(e.Stdout, map[string]any{"stream": ack.Stream, "sequence": ack.Sequence})
	}
	fmt.Fprintf(e.Stdout, "published to %s (stream %s, sequence %d)\n", pos[0], ack.Stream, ack.Sequence)
	return nil
}
