package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hipersync/hipersync/pkg/events"
)

const dlqUsage = `usage:
  hipersync dlq list [--limit N]     dead letters, newest first, with their reasons
  hipersync dlq retry <id>           replay one to its original subject`

// deadLetterList is what `dlq list --json` prints: the newest dead letters
// first, and how many older ones the limit left out.
type deadLetterList struct {
	DeadLetters []deadLetterView `json:"deadLetters"`
	More        int              `json:"more"`
}

// deadLetterView is a dead letter as `dlq list --json` prints it.
type deadLetterView struct {
	ID         uint64    `json:"id"`
	Time       time.Time `json:"time"`
	Tenant     string    `json:"tenant"`
	Consumer   string    `json:"consumer"`
	Subject    string    `json:"subject"`
	ReasonCode string    `json:"reasonCode"`
	Reason     string    `json:"reason"`
	Deliveries uint64    `json:"deliveries"`
	BodyBytes  int       `json:"bodyBytes"`
}

func (a *app) dlqCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "dead letters, newest first, with their reasons"}
	limit := list.Flags().Int("limit", 100, "list at most this many, the newest (0: all)")
	list.RunE = func(_ *cobra.Command, pos []string) error { return runDLQ(a.ctx, a.e, "list", pos, *limit, a.asJSON) }
	retry := &cobra.Command{Use: "retry <id>", Short: "replay a dead letter to its original subject",
		RunE: func(_ *cobra.Command, pos []string) error { return runDLQ(a.ctx, a.e, "retry", pos, 0, a.asJSON) }}
	return group("dlq", "list and retry dead letters", dlqUsage, list, retry)
}

func runDLQ(ctx context.Context, e Env, sub string, pos []string, limitN int, asJSON bool) error {
	limit := &limitN
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	switch sub {
	case "list":
		if len(pos) != 0 {
			return usagef("dlq list takes no arguments\n%s", dlqUsage)
		}
		s, err := connectNATS(e)
		if err != nil {
			return err
		}
		defer s.Close()
		entries, more, err := events.LatestDeadLetters(ctx, s.js, s.ns, *limit)
		if err != nil {
			return err
		}
		views := make([]deadLetterView, 0, len(entries))
		for _, en := range entries {
			v := deadLetterView{ID: en.Seq, Time: en.Time, Subject: en.Subject}
			if en.Err != nil {
				v.ReasonCode, v.Reason = "unreadable_record", en.Err.Error()
			} else {
				l := en.Letter
				v.Tenant, v.Consumer, v.Subject = l.GetTenant(), l.GetConsumer(), l.GetSubject()
				v.ReasonCode, v.Reason, v.Deliveries, v.BodyBytes = l.GetReasonCode(), l.GetReason(), l.GetDeliveries(), len(l.GetData())
			}
			views = append(views, v)
		}
		if asJSON {
			return writeJSON(e.Stdout, deadLetterList{DeadLetters: views, More: more})
		}
		if len(views) == 0 {
			fmt.Fprintln(e.Stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tTENANT\tCONSUMER\tSUBJECT\tREASON")
		for _, v := range views {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s: %s\n", v.ID, v.Time.Format(time.RFC3339), v.Tenant, v.Consumer, v.Subject, v.ReasonCode, v.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if more > 0 {
			fmt.Fprintf(e.Stdout, "older dead letters not shown: %d (--limit 0 lists them all)\n", more)
		}
		return nil
	case "retry":
		if len(pos) != 1 {
			return usagef("dlq retry: want the id of a dead letter\n%s", dlqUsage)
		}
		seq, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil || seq == 0 {
			return usagef("dlq retry: %q is not a dead-letter id (see dlq list)", pos[0])
		}
		s, err := connectNATS(e)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := events.RetryDeadLetter(ctx, s.js, s.ns, seq); err != nil {
			if errors.Is(err, events.ErrDeadLetterNotFound) {
				return fmt.Errorf("no dead letter %d (already retried? see dlq list)", seq)
			}
			return err
		}
		if asJSON {
			return writeJSON(e.Stdout, map[string]any{"id": seq, "retried": true})
		}
		fmt.Fprintf(e.Stdout, "dead letter %d replayed to its original subject\n", seq)
		return nil
	default:
		return usagef("dlq: unknown subcommand %q\n%s", sub, dlqUsage)
	}
}
