package hipersim_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
)

func TestDemoSeed(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{Batch: 20})
	products := a.srv.Sim.Products(a.key)
	if len(products) < 50 {
		t.Fatalf("%d demo products, want at least 50", len(products))
	}

	again, err := hipersim.New(hipersim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(products), ids(again.Products(hipersim.DemoKey))) {
		t.Error("demo ids differ between two starts")
	}

	var parents, children, kg, noCategory, noBrand, inactive int
	byID := map[string]hiper.Product{}
	for _, p := range products {
		byID[p.ID] = p
	}
	for _, p := range products {
		switch {
		case len(p.Variations) > 0:
			parents++
			for _, v := range p.Variations {
				c, ok := byID[v.ID]
				if !ok || c.ParentID != p.ID || !c.Stock.Equal(v.Stock.Decimal) || v.TypeA == "" || v.NameB == "" {
					t.Errorf("variation %+v of %s does not match its product %+v", v, p.Name, c)
				}
			}
		case p.IsVariation():
			children++
		}
		if p.Barcode != "" && !validGTIN13(p.Barcode) {
			t.Errorf("%s: barcode %s has a wrong check digit", p.Name, p.Barcode)
		}
		if p.Unit == "KG" && !p.Stock.Equal(p.Stock.Truncate(0)) {
			kg++
		}
		if p.Category == "" {
			noCategory++
		}
		if p.Brand == "" {
			noBrand++
		}
		if !p.Active {
			inactive++
		}
		for _, c := range p.Image {
			if c > 127 || c == ' ' {
				t.Errorf("%s: image URL %q is not plain ASCII", p.Name, p.Image)
				break
			}
		}
		if p.Name == "" || p.NCM == "" || p.Unit == "" || p.Image == "" || !p.Price.IsPositive() {
			t.Errorf("incomplete demo product %+v", p)
		}
	}
	if parents < 3 || children < 3*parents || kg == 0 || noCategory == 0 || noBrand == 0 || inactive != 1 {
		t.Errorf("demo has %d parents, %d variations, %d fractional KG items, %d without category, %d without brand, %d inactive",
			parents, children, kg, noCategory, noBrand, inactive)
	}

	fed, _ := a.drain(0)
	if len(fed) != len(products) {
		t.Errorf("the feed gives %d products in batches of 20, the catalog has %d", len(fed), len(products))
	}
	if st, p := a.page(0); st != http.StatusOK || len(p.Products) != 20 {
		t.Errorf("first page: status %d, %d products, want 20", st, len(p.Products))
	}
}

func validGTIN13(s string) bool {
	if len(s) != 13 {
		return false
	}
	sum := 0
	for i := range 13 {
		d := int(s[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return sum%10 == 0
}

func TestGenerateCatalog(t *testing.T) {
	t.Parallel()
	first := hipersim.GenerateCatalog(5, 4, 3, 42)
	if len(first) != 5*5+3 {
		t.Fatalf("%d products, want 28", len(first))
	}
	if !slices.Equal(ids(first), ids(hipersim.GenerateCatalog(5, 4, 3, 42))) {
		t.Error("the same seed gave different ids")
	}
	if slices.Equal(ids(first), ids(hipersim.GenerateCatalog(5, 4, 3, 43))) {
		t.Error("another seed gave the same ids")
	}
	a := emptySim(t, nil, first...)
	for _, p := range a.srv.Sim.Products(a.key) {
		if !validGTIN13(p.Barcode) {
			t.Errorf("barcode %s", p.Barcode)
		}
		if bool(p.HasVariations) && !p.IsVariation() && len(p.Variations) != 4 {
			t.Errorf("parent %s lists %d variations, want 4", p.Name, len(p.Variations))
		}
	}
}
