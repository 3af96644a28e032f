package hipersim_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
)

func TestFeedBatchesUntilNothingNew(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{Seed: hipersim.SeedEmpty, Batch: 3})
	var products []hiper.Product
	for n := 1; n <= 7; n++ {
		products = append(products, simpleProduct(n, "1"))
	}
	if err := a.srv.Sim.UpsertProducts(a.key, products); err != nil {
		t.Fatal(err)
	}

	var cursor int64
	var seen []string
	for _, want := range []int{3, 3, 1} {
		st, p := a.page(cursor)
		if st != http.StatusOK || len(p.Products) != want || len(p.Errors) != 0 {
			t.Fatalf("page after %d: status %d, %d products, errors %v; want 200 with %d", cursor, st, len(p.Products), p.Errors, want)
		}
		if p.SyncPoint <= cursor {
			t.Fatalf("cursor went from %d to %d", cursor, p.SyncPoint)
		}
		for _, pr := range p.Products {
			seen = append(seen, pr.ID)
		}
		cursor = p.SyncPoint
	}
	if want := []string{testID(1), testID(2), testID(3), testID(4), testID(5), testID(6), testID(7)}; !slices.Equal(seen, want) {
		t.Errorf("feed order %v, want %v", seen, want)
	}

	st, _, raw := a.raw("GET", a.srv.URL+"/produtos/pontoDeSincronizacao?pontoDeSincronizacao=7", nil)
	const want = `{"pontoDeSincronizacao":0,"produtos":null,"errors":["Nenhum produto encontrado"],"message":null}`
	if st != http.StatusBadRequest || string(raw) != want {
		t.Errorf("nothing new: status %d, body %s; want 400 %s", st, raw, want)
	}
}

func TestFeedRejectsBadCursor(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	for name, query := range map[string]string{
		"missing":      "",
		"empty":        "?pontoDeSincronizacao=",
		"not a number": "?pontoDeSincronizacao=abc",
		"negative":     "?pontoDeSincronizacao=-1",
		"other case":   "?PontoDeSincronizacao=0x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var p hiper.ProductPage
			if st := a.call("GET", "/produtos/pontoDeSincronizacao"+query, nil, &p); st != http.StatusBadRequest || len(p.Errors) == 0 || p.Products != nil {
				t.Fatalf("status %d, page %+v; want 400 with errors", st, p)
			}
		})
	}
}

func TestFeedSyncPointMoves(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "1"), simpleProduct(2, "2"), simpleProduct(3, "3"))
	_, cursor := a.drain(0)

	tests := []struct {
		name   string
		change func(t *testing.T)
		wantID string
		check  func(t *testing.T, p hiper.Product)
	}{
		{
			name: "upsert",
			change: func(t *testing.T) {
				p := simpleProduct(2, "2")
				p.Price = hiper.MustDecimal("11.99")
				if err := a.srv.Sim.UpsertProducts(a.key, []hiper.Product{p}); err != nil {
					t.Fatal(err)
				}
			},
			wantID: testID(2),
			check: func(t *testing.T, p hiper.Product) {
				if p.Price.String() != "11.99" {
					t.Errorf("price %s, want 11.99", p.Price)
				}
			},
		},
		{
			name: "stock through the control API",
			change: func(t *testing.T) {
				if st := a.control("POST", "/_sim/accounts/"+a.key+"/stock", `{"produtoId":"`+testID(3)+`","quantidade":12.5}`, nil); st != http.StatusOK {
					t.Fatalf("set stock: status %d", st)
				}
			},
			wantID: testID(3),
			check: func(t *testing.T, p hiper.Product) {
				if p.Stock.String() != "12.5" {
					t.Errorf("stock %s, want 12.5", p.Stock)
				}
			},
		},
	}
	for _, tt := range tests { // sequential: each step reads after the last cursor
		t.Run(tt.name, func(t *testing.T) {
			tt.change(t)
			got, next := a.drain(cursor)
			if len(got) != 1 || got[0].ID != tt.wantID {
				t.Fatalf("after %s the feed has %d products (%v), want only %s", tt.name, len(got), ids(got), tt.wantID)
			}
			tt.check(t, got[0])
			if lvl := a.stock(tt.wantID); lvl.SyncPoint != next {
				t.Errorf("stock endpoint sync point %d, want the feed's %d", lvl.SyncPoint, next)
			}
			cursor = next
		})
	}
}

func ids(ps []hiper.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestFeedVariations(t *testing.T) {
	t.Parallel()
	parent := simpleProduct(10, "999") // its own stock is replaced by its variations' sum
	parent.HasVariations = true
	parent.Variations = []hiper.Variation{
		{ID: testID(11), TypeA: "Cor", NameA: "Azul", TypeB: "Tamanho", NameB: "P"},
		{ID: testID(12), TypeA: "Cor", NameA: "Azul", TypeB: "Tamanho", NameB: "M", Stock: hiper.MustDecimal("1000")},
	}
	child := func(n int, stock string) hiper.Product {
		p := simpleProduct(n, stock)
		p.ParentID = testID(10)
		return p
	}
	a := emptySim(t, nil, parent, child(11, "3"), child(12, "4.5"), simpleProduct(20, "1"))

	got, cursor := a.drain(0)
	byID := map[string]hiper.Product{}
	for _, p := range got {
		byID[p.ID] = p
	}
	checkParent := func(t *testing.T, p hiper.Product, stocks ...string) {
		t.Helper()
		if !bool(p.HasVariations) || p.ParentID != hiper.ZeroID || p.IsVariation() {
			t.Errorf("parent: grade %v, produtoPrimarioId %s; want grade and the zero id", p.HasVariations, p.ParentID)
		}
		if len(p.Variations) != 2 {
			t.Fatalf("parent lists %d variations, want 2", len(p.Variations))
		}
		for i, v := range p.Variations {
			if v.ID != testID(11+i) || v.Stock.String() != stocks[i] || v.TypeA != "Cor" || v.NameB == "" || !bool(v.Active) {
				t.Errorf("variation %d: %+v, want id %s with stock %s and its axes", i, v, testID(11+i), stocks[i])
			}
		}
	}
	checkParent(t, byID[testID(10)], "3", "4.5")
	if s := byID[testID(10)].Stock.String(); s != "7.5" {
		t.Errorf("parent stock %s, want the sum 7.5", s)
	}
	for _, n := range []int{11, 12} {
		c := byID[testID(n)]
		if c.ParentID != testID(10) || len(c.Variations) != 0 || c.Variations == nil || !bool(c.HasVariations) {
			t.Errorf("child %d: produtoPrimarioId %s, variacao %v, grade %v", n, c.ParentID, c.Variations, c.HasVariations)
		}
	}
	if s := byID[testID(20)]; s.ParentID != hiper.ZeroID || bool(s.HasVariations) || len(s.Variations) != 0 {
		t.Errorf("simple product: produtoPrimarioId %s, grade %v, variacao %v", s.ParentID, s.HasVariations, s.Variations)
	}

	// A variation's stock change moves it and its parent, whose variacao
	// shows the new stock.
	if err := a.srv.Sim.SetStock(a.key, testID(12), hiper.MustDecimal("1")); err != nil {
		t.Fatal(err)
	}
	got, _ = a.drain(cursor)
	if len(got) != 2 {
		t.Fatalf("after a variation's stock change the feed has %v, want the variation and its parent", ids(got))
	}
	for _, p := range got {
		if p.ID == testID(10) {
			checkParent(t, p, "3", "1")
		}
	}
	if err := a.srv.Sim.SetStock(a.key, testID(10), hiper.MustDecimal("1")); err == nil {
		t.Error("setting a parent's stock succeeded; its stock is its variations'")
	}
}

func TestStockEndpoint(t *testing.T) {
	t.Parallel()
	p := simpleProduct(1, "-2.25") // Hiper allows negative, fractional stock
	p.MinimumStock = hiper.MustDecimal("3")
	a := emptySim(t, nil, p)
	const path = "/estoques/pontoDeSincronizacao"

	var lvl hiper.StockLevel
	if st := a.call("GET", path+"?pontoDeSincronizacao=0&ProdutoId="+testID(1), nil, &lvl); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if lvl.ProductID != testID(1) || lvl.Quantity.String() != "-2.25" || lvl.MinimumStock.String() != "3" || lvl.SyncPoint != 1 || lvl.Errors == nil {
		t.Errorf("stock level %+v", lvl)
	}

	for name, tt := range map[string]struct {
		query string
		want  int
	}{
		"unknown product":       {"?pontoDeSincronizacao=0&ProdutoId=" + testID(99), http.StatusNotFound},
		"missing ProdutoId":     {"?pontoDeSincronizacao=0", http.StatusBadRequest},
		"lower-case produtoId":  {"?pontoDeSincronizacao=0&produtoId=" + testID(1), http.StatusBadRequest},
		"ProdutoId not a uuid":  {"?pontoDeSincronizacao=0&ProdutoId=42", http.StatusBadRequest},
		"malformed sync point":  {"?pontoDeSincronizacao=x&ProdutoId=" + testID(1), http.StatusBadRequest},
		"upper-case uuid works": {"?pontoDeSincronizacao=0&ProdutoId=00000000-0000-4000-8000-000000000001", http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ans hiper.StockLevel
			st := a.call("GET", path+tt.query, nil, &ans)
			if st != tt.want || (st != http.StatusOK) != (len(ans.Errors) > 0) {
				t.Fatalf("status %d, errors %v; want %d", st, ans.Errors, tt.want)
			}
		})
	}
}

// TestFeedAfterManyChanges changes products far more often than they are
// many, so the feed's stale entries are compacted, and checks that every
// cursor still sees each changed product once.
func TestFeedAfterManyChanges(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "0"), simpleProduct(2, "0"), simpleProduct(3, "0"))
	_, mid := a.drain(0)
	for i := range 3000 {
		if err := a.srv.Sim.SetStock(a.key, testID(1+i%2), hiper.DecimalFromInt(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		cursor int64
		want   []string
	}{
		{0, []string{testID(3), testID(1), testID(2)}},
		{mid, []string{testID(1), testID(2)}},
		{mid + 2998, []string{testID(1), testID(2)}},
		{mid + 2999, []string{testID(2)}},
	} {
		got, _ := a.drain(tt.cursor)
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("after %d: %v, want %v", tt.cursor, ids(got), tt.want)
		}
	}
	if got := a.stock(testID(2)).Quantity.String(); got != "2999" {
		t.Errorf("stock %s, want the last one set, 2999", got)
	}
}
