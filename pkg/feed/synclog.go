package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// The sync log (seed 004, "Log de Sincronização": "Em caso de sucesso ou
// falha em qualquer sincronização, você receberá um aviso"): a run that
// published something, was held, ran in full or was asked for leaves a
// sync.completed with its counts; a run that failed leaves a sync.failed
// with a stable reason, a Portuguese message and what to do. Runs that
// found nothing new leave nothing, or a store polled every minute would
// read 1,440 lines a day saying so.

// Tally counts what a run published, by what it was.
type Tally struct {
	mu                                               sync.Mutex
	products, prices, stock, skipped, unlisted, held int64
}

func (t *Tally) add(changes []Change) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range changes {
		for _, e := range c.Events {
			switch m := e.Msg.(type) {
			case *eventsv1.CatalogProductUpserted:
				if m.GetReason() != "" {
					t.unlisted++
				} else {
					t.products++
				}
			case *eventsv1.CatalogPriceChanged:
				t.prices++
			case *eventsv1.StockChanged:
				t.stock++
			case *eventsv1.CatalogProductSkipped:
				t.skipped++
			}
		}
	}
}

func (t *Tally) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.products+t.prices+t.stock+t.skipped+t.unlisted+t.held == 0
}

// Counting returns a Sink that also counts into t what it publishes.
func (k *Sink) Counting(t *Tally) *Sink {
	c := *k
	c.tally = t
	return &c
}

// logSync publishes the run's entry of the sync log, if it has one. A run
// cancelled (paused tenant, shutdown, lease lost) has none: it is not the
// tenant's failure and the next run goes on. A run cancelled because Hiper
// refused the tenant's key is the exception: the merchant must read why the
// sync stopped.
func (cfg *JobConfig) logSync(ctx context.Context, r *schedule.Run, t *Tally, jobErr error) {
	if cause := context.Cause(ctx); errors.Is(cause, tenant.ErrKeyRefused) {
		jobErr = cause
	} else if cause != nil || errors.Is(jobErr, schedule.ErrLeaseLost) {
		return
	}
	now := time.Now().UTC()
	kind := string(cfg.Kind)
	st := r.Status()
	var (
		msg  proto.Message
		k    events.Kind
		what string
	)
	if jobErr != nil {
		reason, text, action := FailureOf(jobErr)
		k, what = events.KindSyncFailed, "failed"
		msg = &eventsv1.SyncFailed{Kind: kind, StartedAt: timestamppb.New(r.Start), FailedAt: timestamppb.New(now),
			Reason: reason, Message: text, Action: action, Failures: int32(st.Failures) + 1}
	} else {
		if st.Held != nil && !st.Held.Since.Before(r.Start) {
			t.held = 1
		}
		if t.empty() && !r.Full && r.Request == nil {
			return
		}
		k, what = events.KindSyncCompleted, "completed"
		msg = &eventsv1.SyncCompleted{Kind: kind, StartedAt: timestamppb.New(r.Start), FinishedAt: timestamppb.New(now),
			Full: r.Full, Products: t.products, Prices: t.prices, StockChanges: t.stock, Skipped: t.skipped,
			Unlisted: t.unlisted, Held: t.held > 0}
	}
	id := fmt.Sprintf("%s:sync:%s:%s:%d", r.Tenant, kind, what, r.Start.UnixNano())
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := cfg.Publisher.Publish(wctx, cfg.Namespace.HiperSubject(r.Tenant, k), id, msg); err != nil {
		r.Log.Warn("publish the sync log entry", "error", err)
	}
}

// Reasons of sync.failed.
const (
	FailureInvalidKey       = "invalid_key"
	FailureTokenRefused     = "token_refused"
	FailureTokenUnavailable = "token_unavailable"
	FailureTenantInactive   = "tenant_inactive"
	FailureRateLimited      = "hiper_rate_limited"
	FailureHiperUnavailable = "hiper_unavailable"
	FailureStorageFull      = "storage_full"
	FailureInternal         = "internal"
)

// FailureOf names a failed run for the merchant: a stable reason, what
// happened and what to do, in Portuguese.
func FailureOf(err error) (reason, message, action string) {
	switch {
	case errors.Is(err, tenant.ErrKeyRefused), errors.Is(err, tenant.ErrInvalidKey), errors.Is(err, hiper.ErrInvalidKey):
		return FailureInvalidKey, "O Hiper recusou a chave de segurança da loja.",
			"Copie a chave em Vendas > Loja virtual > Configurações, no Hiper, e conecte a loja de novo."
	case errors.Is(err, hiper.ErrUnauthorized):
		return FailureTokenRefused, "O Hiper recusou o token de acesso da loja.",
			"Nada a fazer: um token novo é pedido na próxima tentativa. Se continuar, confira a chave de segurança."
	case errors.Is(err, brokerclient.ErrUnavailable):
		return FailureTokenUnavailable, "O serviço de tokens da integração não respondeu.",
			"Nada a fazer: a sincronização é tentada de novo automaticamente. Se continuar, avise o suporte."
	case errors.Is(err, tenant.ErrPaused), errors.Is(err, tenant.ErrNotConnected), errors.Is(err, tenant.ErrUnknown):
		return FailureTenantInactive, "A integração da loja está pausada ou desconectada.",
			"Retome ou conecte a loja para voltar a sincronizar."
	case errors.Is(err, hiper.ErrRateLimited):
		return FailureRateLimited, "O Hiper pediu para diminuir o ritmo das consultas.",
			"Nada a fazer: a sincronização é tentada de novo em instantes."
	case errors.Is(err, hiper.ErrTransient), errors.Is(err, hiper.ErrBadResponse), errors.Is(err, tenant.ErrHiperUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return FailureHiperUnavailable, "O Hiper não respondeu ou respondeu com erro.",
			"Nada a fazer: a sincronização é tentada de novo automaticamente."
	case errors.Is(err, ErrStoreFull), events.Full(err):
		return FailureStorageFull, "O espaço da integração para guardar o estado dos produtos está cheio: a sincronização parou onde estava, sem perder nada.",
			"Avise o suporte para liberar espaço. Depois disso a sincronização continua sozinha de onde parou."
	}
	return FailureInternal, "A sincronização falhou por um erro interno da integração.",
		"A sincronização é tentada de novo automaticamente. Se continuar, avise o suporte."
}
