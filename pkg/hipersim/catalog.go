package hipersim

import (
	"fmt"
	"math/rand/v2"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// GenerateCatalog returns a large deterministic catalog for benchmarks:
// parents products with variationsPerParent variations each (listed right
// after their parent), then simple products. The same arguments always give
// the same products, ids included.
func GenerateCatalog(parents, variationsPerParent, simple int, seed int64) []hiper.Product {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x68697065727369)) // "hipersi"
	nextID := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return uuidFromBytes(b[:])
	}
	code := int64(0)
	product := func(name string) hiper.Product {
		code++
		cat := genCategories[rng.IntN(len(genCategories))]
		price := hiper.Decimal{Decimal: hiper.DecimalFromInt(int64(rng.IntN(99_900) + 100)).Shift(-2)} // 1.00 … 999.99
		return hiper.Product{
			ID:           nextID(),
			Code:         code,
			Barcode:      gtin13(fmt.Sprintf("789%09d", code%1_000_000_000)),
			Name:         name,
			Description:  "Produto gerado para testes de desempenho: " + name + ".",
			Brand:        genBrands[rng.IntN(len(genBrands))],
			Category:     cat,
			Unit:         "UN",
			NCM:          "61091000",
			Price:        price,
			Active:       true,
			Image:        fmt.Sprintf("https://imagens.hiper-sim.example/gerados/%d.jpg", code),
			WeightGrams:  hiper.DecimalFromInt(int64(rng.IntN(5000) + 50)),
			HeightCm:     hiper.DecimalFromInt(int64(rng.IntN(50) + 1)),
			WidthCm:      hiper.DecimalFromInt(int64(rng.IntN(50) + 1)),
			LengthCm:     hiper.DecimalFromInt(int64(rng.IntN(50) + 1)),
			Stock:        hiper.DecimalFromInt(int64(rng.IntN(200))),
			MinimumStock: hiper.DecimalFromInt(int64(rng.IntN(5))),
			ParentID:     hiper.ZeroID,
		}
	}

	out := make([]hiper.Product, 0, parents*(1+variationsPerParent)+simple)
	for i := range parents {
		noun := genNouns[rng.IntN(len(genNouns))]
		parent := product(fmt.Sprintf("%s %s %d", noun, genAdjectives[rng.IntN(len(genAdjectives))], i+1))
		parent.HasVariations = true
		parent.Stock = hiper.Decimal{}
		first := len(out)
		out = append(out, parent)
		for v := range variationsPerParent {
			color := genColors[v%len(genColors)]
			size := genSizes[(v/len(genColors))%len(genSizes)]
			child := product(fmt.Sprintf("%s %s %s", parent.Name, color, size))
			child.HasVariations = true
			child.ParentID = parent.ID
			child.Category, child.Brand = parent.Category, parent.Brand
			out = append(out, child)
			out[first].Variations = append(out[first].Variations, hiper.Variation{
				ID: child.ID, Code: child.Code, Barcode: child.Barcode,
				TypeA: "Cor", NameA: color, TypeB: "Tamanho", NameB: size,
				Stock: child.Stock, MinimumStock: child.MinimumStock, Active: true,
			})
		}
	}
	for i := range simple {
		noun := genNouns[rng.IntN(len(genNouns))]
		out = append(out, product(fmt.Sprintf("%s %s %d", noun, genAdjectives[rng.IntN(len(genAdjectives))], parents+i+1)))
	}
	return out
}

// Word lists of GenerateCatalog.
var (
	genNouns      = []string{"Camiseta", "Bermuda", "Vestido", "Jaqueta", "Mochila", "Tênis", "Sandália", "Boné", "Meia", "Moletom", "Saia", "Blusa"}
	genAdjectives = []string{"Básica", "Esportiva", "Casual", "Premium", "Infantil", "Estampada", "Lisa", "Listrada", "Clássica", "Urbana"}
	genColors     = []string{"Preto", "Branco", "Azul", "Vermelho", "Verde", "Cinza"}
	genSizes      = []string{"P", "M", "G", "GG", "XG"}
	genBrands     = []string{"Estilo Brasil", "Passo Firme", "Urbano", "Tropical", "Vento Sul"}
	genCategories = []string{"Vestuário", "Calçados", "Acessórios", "Infantil", "Esporte"}
)
