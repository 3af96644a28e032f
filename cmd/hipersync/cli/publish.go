package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

const publishUsage = `usage:
  hipersync publish <subject> --file FILE    (FILE "-" reads stdin)
    publishes FILE's JSON as a store platform's plain NATS client would, e.g.
    hipersync publish store.demo.order.approved --file order.json`

func (a *app) publishCmd() *cobra.Command {
	c := &cobra.Command{Use: "publish <subject> --file FILE", Short: "publish a JSON event as a store's plain NATS client would",
		Long: "publish a JSON event as a store's plain NATS client would\n\n" + publishUsage}
	file := c.Flags().String("file", "", "the JSON body; - for stdin")
	c.RunE = func(_ *cobra.Command, pos []string) error { return runPublish(a.ctx, a.e, pos, *file, a.asJSON) }
	return c
}

// runPublish publishes a JSON event with nothing but a Content-Type header:
// what a store written in any language does with a plain NATS client.
func runPublish(ctx context.Context, e Env, pos []string, file string, asJSON bool) error {
	if len(pos) != 1 || file == "" {
		return usagef("publish: want a subject and --file\n%s", publishUsage)
	}
	var body []byte
	var err error
	if file == "-" {
		body, err = io.ReadAll(io.LimitReader(e.Stdin, 1<<20))
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%s is not JSON", file)
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
	if asJSON {
		return writeJSON(e.Stdout, map[string]any{"stream": ack.Stream, "sequence": ack.Sequence})
	}
	fmt.Fprintf(e.Stdout, "published to %s (stream %s, sequence %d)\n", pos[0], ack.Stream, ack.Sequence)
	return nil
}
