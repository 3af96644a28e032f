package cli

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
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
	list.RunE = func(_ *cobra.Command, pos []string) error { return a.runDLQ("list", pos, *limit, a.asJSON) }
	retry := &cobra.Command{Use: "retry <id>", Short: "replay a dead letter to its original subject",
		RunE: func(_ *cobra.Command, pos []string) error { return a.runDLQ("retry", pos, 0, a.asJSON) }}
	return group("dlq", "list and retry dead letters", dlqUsage, list, retry)
}

func (a *app) runDLQ(sub string, pos []string, limitN int, asJSON bool) error {
	ctx, e := a.ctx, a.e
	limit := &limitN
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	switch sub {
	case "list":
		if len(pos) != 0 {
			return usagef("dlq list takes no arguments\n%s", dlqUsage)
		}
		c, err := a.admin(needs{})
		if err != nil {
			return err
		}
		defer c.Close()
		n := int32(*limit)
		if *limit <= 0 || *limit > math.MaxInt32 {
			n = math.MaxInt32
		}
		resp, err := c.ListDeadLetters(ctx, &adminv1.ListDeadLettersRequest{Limit: n})
		if err != nil {
			return apiError(err)
		}
		got := resp.GetDeadLetters()
		more := int(resp.GetTotal()) - len(got)
		views := make([]deadLetterView, 0, len(got))
		// The API answers oldest first; an operator reads the newest first.
		for i := len(got) - 1; i >= 0; i-- {
			l := got[i]
			views = append(views, deadLetterView{ID: l.GetId(), Time: l.GetTime().AsTime(), Tenant: l.GetTenantId(),
				Consumer: l.GetConsumer(), Subject: l.GetSubject(), ReasonCode: l.GetReasonCode(), Reason: l.GetReason(),
				Deliveries: l.GetDeliveries(), BodyBytes: int(l.GetBodyBytes())})
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
		c, err := a.admin(needs{})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.RetryDeadLetter(ctx, &adminv1.RetryDeadLetterRequest{Id: seq}); err != nil {
			if connect.CodeOf(err) == connect.CodeNotFound {
				return fmt.Errorf("no dead letter %d (already retried? see dlq list)", seq)
			}
			return apiError(err)
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
