package hipersim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// TestConcurrentUse hits one account from many goroutines at once — orders,
// cancellations, feed reads, stock reads and control changes — and checks
// that stock reservations add up.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	parent := simpleProduct(10, "0")
	child := simpleProduct(11, "500")
	child.ParentID = testID(10)
	a := emptySim(t, nil, simpleProduct(1, "1000"), simpleProduct(2, "0"), parent, child)

	do := func(method, url string, body any, out any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				return resp.StatusCode, err
			}
		}
		return resp.StatusCode, nil
	}

	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				var created hiper.CreateOrderAnswer
				if st, err := do("POST", a.srv.URL+"/pedido-de-venda/", validOrder(testID(1), testID(11)), &created); err != nil || st != http.StatusOK || created.ID == "" {
					t.Errorf("create order: %d, %v, %+v", st, err, created)
					return
				}
				if i%2 == 0 {
					if st, err := do("PUT", a.srv.URL+"/pedido-de-venda/cancelar/"+created.ID, nil, nil); err != nil || st != http.StatusOK {
						t.Errorf("cancel: %d, %v", st, err)
					}
				}
				checks := []struct{ method, url string }{
					{"GET", a.srv.URL + "/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0"},
					{"GET", a.srv.URL + "/estoques/pontoDeSincronizacao?pontoDeSincronizacao=0&ProdutoId=" + testID(10)},
					{"GET", a.srv.URL + "/pedido-de-venda/eventos/" + created.ID},
				}
				for _, c := range checks {
					if st, err := do(c.method, c.url, nil, nil); err != nil || st != http.StatusOK {
						t.Errorf("%s: %d, %v", c.url, st, err)
					}
				}
				stock := map[string]any{"produtoId": testID(2), "quantidade": fmt.Sprint(w*100 + i)}
				if st, err := do("POST", a.srv.Root+"/_sim/accounts/"+a.key+"/stock", stock, nil); err != nil || st != http.StatusOK {
					t.Errorf("set stock: %d, %v", st, err)
				}
			}
		})
	}
	testkit.Wait(t, &wg, time.Minute, "the workers")

	kept := workers * perWorker / 2
	if got := a.stock(testID(1)).Quantity.String(); got != fmt.Sprint(1000-kept) {
		t.Errorf("stock of the simple product %s, want %d", got, 1000-kept)
	}
	if got := a.stock(testID(10)).Quantity.String(); got != fmt.Sprint(500-kept) {
		t.Errorf("stock of the parent %s, want its variation's %d", got, 500-kept)
	}
	if n := len(a.srv.Sim.Orders(a.key)); n != workers*perWorker {
		t.Errorf("%d orders, want %d", n, workers*perWorker)
	}
	products, _ := a.drain(0)
	if len(products) != 4 {
		t.Errorf("the feed has %d products after the churn, want each of the 4 once", len(products))
	}
}
