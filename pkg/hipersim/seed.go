package hipersim

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// The demo catalog: a small Brazilian store (grocery, cleaning, hardware,
// housewares, clothing) with the shapes a connector must handle — variations
// of two axes, items sold by weight with fractional stock, products without
// category or brand, an inactive product, wholesale prices, missing
// descriptions. Ids derive from the account key and the product, so they are
// the same on every start but differ between accounts (a tenant mix-up
// cannot go unnoticed).

// demoItem is one simple product of the demo catalog.
type demoItem struct {
	name, description, brand, category, unit, ncm string
	price, stock, minimum, weight                 string
	height, width, length                         string
	extraImages                                   int
	wholesale                                     string // precoAtacado; "" when none
	inactive                                      bool
}

// demoGrid is a product with variations: every combination of the two axes.
type demoGrid struct {
	name, description, brand, category, ncm string
	price, weight                           string
	height, width, length                   string
	typeA                                   string
	namesA                                  []string
	typeB                                   string
	namesB                                  []string
}

func demoItems() []demoItem {
	return []demoItem{
		{"Café Torrado e Moído Tradicional 500g", "Café 100% arábica, torra média, embalado a vácuo.", "Serra Azul", "Mercearia", "UN", "09012100", "18.90", "120", "12", "500", "18", "9", "6", 1, "16.90", false},
		{"Arroz Branco Tipo 1 5kg", "Arroz agulhinha tipo 1, grãos longos e soltinhos.", "Vale Dourado", "Mercearia", "UN", "10063021", "27.49", "80", "10", "5000", "30", "20", "8", 0, "25.99", false},
		{"Feijão Carioca Tipo 1 1kg", "Feijão carioca selecionado, cozimento rápido.", "Vale Dourado", "Mercearia", "UN", "07133319", "8.79", "150", "20", "1000", "22", "14", "5", 0, "", false},
		{"Açúcar Cristal 1kg", "", "Doce Lar", "Mercearia", "UN", "17019900", "4.99", "200", "24", "1000", "18", "11", "6", 0, "", false},
		{"Óleo de Soja 900ml", "Óleo de soja refinado.", "Campo Verde", "Mercearia", "UN", "15079011", "7.45", "96", "12", "900", "24", "7", "7", 0, "", false},
		{"Farinha de Trigo Tipo 1 1kg", "Farinha de trigo enriquecida com ferro e ácido fólico.", "Moinho Real", "Mercearia", "UN", "11010010", "5.69", "64", "10", "1000", "20", "12", "6", 0, "", false},
		{"Macarrão Espaguete 500g", "Massa de sêmola com ovos.", "Nonna Lucia", "Mercearia", "UN", "19021900", "4.29", "130", "20", "500", "28", "8", "3", 0, "", false},
		{"Molho de Tomate Tradicional 340g", "", "Nonna Lucia", "Mercearia", "UN", "21032010", "3.19", "110", "15", "340", "16", "10", "4", 0, "", false},
		{"Leite Integral UHT 1L", "Leite longa vida integral.", "Fazenda Boa Vista", "Laticínios", "CX", "04012010", "5.49", "240", "48", "1030", "20", "6", "9", 0, "4.99", false},
		{"Achocolatado em Pó 400g", "Achocolatado em pó enriquecido com vitaminas.", "Cacau Bom", "Mercearia", "UN", "18069000", "9.98", "45", "6", "400", "15", "10", "10", 1, "", false},
		{"Biscoito Cream Cracker 400g", "", "Vovó Nina", "Biscoitos", "UN", "19053100", "6.35", "70", "10", "400", "22", "10", "6", 0, "", false},
		{"Queijo Muçarela Fatiado", "Muçarela fatiada na hora, vendida por quilo.", "Fazenda Boa Vista", "Frios", "KG", "04061010", "49.90", "12.375", "2.5", "1000", "0", "0", "0", 0, "", false},
		{"Presunto Cozido sem Capa de Gordura", "Presunto cozido fatiado, vendido por quilo.", "Sabor da Serra", "Frios", "KG", "16024100", "39.90", "8.740", "2", "1000", "0", "0", "0", 0, "", false},
		{"Banana Prata", "Banana prata selecionada, vendida por quilo.", "", "Hortifruti", "KG", "08039000", "6.98", "35.750", "5", "1000", "0", "0", "0", 0, "", false},
		{"Sabão em Pó Multiação 1kg", "Remove manchas difíceis já na primeira lavagem.", "Brilho Total", "Limpeza", "UN", "34022000", "14.90", "60", "8", "1000", "25", "17", "6", 0, "", false},
		{"Detergente Líquido Neutro 500ml", "", "Brilho Total", "Limpeza", "UN", "34022000", "2.39", "300", "36", "530", "22", "7", "5", 0, "1.99", false},
		{"Amaciante de Roupas Concentrado 2L", "Perfume de longa duração.", "Brilho Total", "Limpeza", "UN", "38099190", "17.80", "40", "6", "2100", "29", "14", "9", 0, "", false},
		{"Papel Higiênico Folha Dupla 12 Rolos", "Folha dupla, macio e resistente, 30 m por rolo.", "Nuvem", "Higiene", "PC", "48181000", "21.90", "55", "8", "1300", "22", "40", "20", 1, "", false},
		{"Shampoo Hidratação Intensa 350ml", "Para cabelos secos e danificados.", "Flor de Lis", "Higiene", "UN", "33051000", "15.49", "35", "5", "380", "21", "7", "4", 0, "", false},
		{"Creme Dental Menta 90g", "", "Sorriso", "Higiene", "UN", "33061000", "3.99", "140", "20", "110", "18", "4", "4", 0, "", false},
		{"Esponja Multiuso Dupla Face", "Pacote com 3 unidades.", "Brilho Total", "Limpeza", "PC", "39249000", "4.50", "90", "12", "45", "3", "10", "7", 0, "", false},
		{"Martelo de Unha 27mm Cabo de Madeira", "Cabeça forjada em aço carbono.", "Ferramentas Forte", "Ferramentas", "UN", "82052000", "34.90", "18", "3", "650", "33", "12", "3", 1, "", false},
		{"Chave de Fenda 1/4 x 6\"", "Haste em aço cromo-vanádio.", "Ferramentas Forte", "Ferramentas", "UN", "82054010", "12.75", "25", "4", "120", "26", "3", "3", 0, "", false},
		{"Trena de Aço 5m", "Trava automática e clipe para cinto.", "Medida Certa", "Ferramentas", "UN", "90178010", "19.90", "22", "4", "210", "7", "7", "4", 0, "", false},
		{"Lâmpada LED Bulbo 9W Branca Fria", "Equivale a 60W, bivolt, 806 lúmens.", "Luz & Cia", "Elétrica", "UN", "85395000", "8.99", "160", "24", "45", "11", "6", "6", 0, "7.49", false},
		{"Fita Isolante Antichama 20m", "", "Luz & Cia", "Elétrica", "UN", "39191010", "6.40", "75", "10", "60", "2", "10", "10", 0, "", false},
		{"Extensão Elétrica 3 Tomadas 3m", "Cabo de 1,5 mm², padrão brasileiro de tomadas.", "Luz & Cia", "Elétrica", "UN", "85444200", "29.90", "14", "2", "350", "8", "15", "15", 0, "", false},
		{"Cadeado de Latão 40mm", "Acompanha 2 chaves.", "Segura Mais", "Ferramentas", "UN", "83011000", "27.50", "30", "4", "230", "8", "5", "2", 0, "", false},
		{"Garrafa Térmica Inox 1L", "Mantém a temperatura por até 12 horas.", "Casa Bela", "Utilidades Domésticas", "UN", "96170010", "79.90", "12", "2", "480", "30", "9", "9", 2, "", false},
		{"Panela de Pressão 4,5L Alumínio", "Com válvula de segurança, certificada pelo Inmetro.", "Casa Bela", "Utilidades Domésticas", "UN", "76151000", "129.90", "7", "1", "2100", "22", "38", "24", 1, "", false},
		{"Jogo de Copos de Vidro 6 Peças 300ml", "", "Casa Bela", "Utilidades Domésticas", "CX", "70134900", "39.99", "16", "2", "1500", "13", "25", "17", 0, "", false},
		{"Toalha de Banho 100% Algodão", "Gramatura 420 g/m², 70 x 140 cm.", "Casa Bela", "Cama, Mesa e Banho", "UN", "63026000", "45.90", "26", "3", "420", "5", "30", "20", 1, "", false},
		// Without category or brand: a store publishes them only with a
		// default category and brand.
		{"Vela Aromática Lavanda", "Vela em pote de vidro, 40 horas de queima.", "", "", "UN", "34060000", "24.90", "19", "0", "300", "9", "8", "8", 0, "", false},
		{"Porta-Retrato 10x15 Madeira", "", "", "", "UN", "44140000", "19.50", "11", "0", "250", "20", "15", "2", 0, "", false},
		{"Kit Costura Básico", "Agulhas, linhas de 10 cores, fita métrica e tesoura.", "", "Armarinho", "UN", "96050000", "15.00", "9", "0", "180", "4", "18", "12", 0, "", false},
		// Discontinued: arrives as ativo false.
		{"Fita Cassete Virgem 60 Minutos", "Fora de linha.", "Som Antigo", "Eletrônicos", "UN", "85235290", "9.90", "0", "0", "60", "7", "11", "2", 0, "", true},
	}
}

func demoGrids() []demoGrid {
	return []demoGrid{
		{"Camiseta Básica Algodão", "Camiseta de malha 100% algodão, gola careca.", "Estilo Brasil", "Vestuário", "61091000", "39.90", "180", "2", "25", "30",
			"Cor", []string{"Branca", "Preta", "Azul Marinho"}, "Tamanho", []string{"P", "M", "G", "GG"}},
		{"Tênis Esportivo Corrida", "Solado em EVA com amortecimento, cabedal em tela respirável.", "Passo Firme", "Calçados", "64041100", "219.90", "650", "12", "20", "32",
			"Cor", []string{"Preto", "Cinza"}, "Tamanho", []string{"38", "39", "40", "41", "42"}},
		{"Calça Jeans Masculina Slim", "Jeans com elastano, cinco bolsos.", "Estilo Brasil", "Vestuário", "62034200", "149.90", "550", "3", "30", "40",
			"Cor", []string{"Azul Claro", "Azul Escuro"}, "Tamanho", []string{"38", "40", "42", "44"}},
		{"Chinelo de Borracha", "", "Passo Firme", "Calçados", "64022000", "24.90", "220", "4", "12", "28",
			"Cor", []string{"Amarelo", "Verde", "Azul"}, "Tamanho", []string{"35/36", "37/38", "39/40"}},
	}
}

// demoCatalog is the demo seed for the account of key, parents before their
// variations.
func demoCatalog(key string) []hiper.Product {
	id := func(kind, name string) string {
		sum := sha256.Sum256([]byte("hipersim demo " + key + " " + kind + " " + name))
		return uuidFromBytes(sum[:16])
	}
	image := func(name string, n int) string {
		slug := slugify(name)
		if n == 0 {
			return "https://imagens.hiper-sim.example/produtos/" + slug + ".jpg"
		}
		return fmt.Sprintf("https://imagens.hiper-sim.example/produtos/%s-%d.jpg", slug, n+1)
	}
	code := int64(1000)
	item := int64(0)
	nextEAN := func() string {
		item++
		return gtin13(fmt.Sprintf("7896543%05d", item))
	}
	dec := hiper.MustDecimal
	var out []hiper.Product

	for _, it := range demoItems() {
		code++
		p := hiper.Product{
			ID:           id("product", it.name),
			Code:         code,
			Barcode:      nextEAN(),
			Name:         it.name,
			Description:  it.description,
			Brand:        it.brand,
			Category:     it.category,
			Unit:         it.unit,
			NCM:          it.ncm,
			Price:        dec(it.price),
			Active:       hiper.Bool(!it.inactive),
			Image:        image(it.name, 0),
			WeightGrams:  dec(it.weight),
			HeightCm:     dec(it.height),
			WidthCm:      dec(it.width),
			LengthCm:     dec(it.length),
			Stock:        dec(it.stock),
			MinimumStock: dec(it.minimum),
			ParentID:     hiper.ZeroID,
		}
		if it.category != "" {
			p.CategoryID = id("category", it.category)
		}
		if it.unit == "KG" {
			p.Barcode = "" // weighed at the counter: no EAN of its own
		}
		for n := 1; n <= it.extraImages; n++ {
			p.AdditionalImages = append(p.AdditionalImages, hiper.AdditionalImage{URL: image(it.name, n)})
		}
		if it.wholesale != "" {
			on, price := hiper.Bool(true), dec(it.wholesale)
			p.WholesaleActive, p.WholesalePrice = &on, &price
		}
		out = append(out, p)
	}

	for g, grid := range demoGrids() {
		code++
		parent := hiper.Product{
			ID:            id("product", grid.name),
			Code:          code,
			Name:          grid.name,
			Description:   grid.description,
			Brand:         grid.brand,
			Category:      grid.category,
			CategoryID:    id("category", grid.category),
			Unit:          "UN",
			NCM:           grid.ncm,
			Price:         dec(grid.price),
			Active:        true,
			Image:         image(grid.name, 0),
			WeightGrams:   dec(grid.weight),
			HeightCm:      dec(grid.height),
			WidthCm:       dec(grid.width),
			LengthCm:      dec(grid.length),
			HasVariations: true,
			ParentID:      hiper.ZeroID,
		}
		var children []hiper.Product
		for a, nameA := range grid.namesA {
			for b, nameB := range grid.namesB {
				code++
				name := grid.name + " " + nameA + " " + nameB
				stock := (g*7 + a*5 + b*3) % 13 // some variations sold out
				child := parent
				child.ID = id("product", name)
				child.Code = code
				child.Barcode = nextEAN()
				child.Name = name
				child.Stock = hiper.DecimalFromInt(int64(stock))
				child.MinimumStock = hiper.DecimalFromInt(1)
				child.ParentID = parent.ID
				children = append(children, child)
				parent.Variations = append(parent.Variations, hiper.Variation{
					ID: child.ID, Code: child.Code, Barcode: child.Barcode,
					TypeA: grid.typeA, NameA: nameA, TypeB: grid.typeB, NameB: nameB,
					Stock: child.Stock, MinimumStock: child.MinimumStock, Active: true,
				})
			}
		}
		out = append(out, parent)
		out = append(out, children...)
	}
	return out
}

// gtin13 appends the GTIN-13 check digit to 12 digits.
func gtin13(digits12 string) string {
	sum := 0
	for i := 0; i < 12; i++ {
		d := int(digits12[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return digits12 + string(rune('0'+(10-sum%10)%10))
}

// slugify makes an ASCII URL path segment of a Portuguese product name.
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if folded, ok := foldAccent[r]; ok {
			r = folded
		}
		switch {
		case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// foldAccent maps the accented letters of Portuguese to ASCII.
var foldAccent = map[rune]rune{
	'á': 'a', 'à': 'a', 'â': 'a', 'ã': 'a', 'é': 'e', 'ê': 'e', 'í': 'i',
	'ó': 'o', 'ô': 'o', 'õ': 'o', 'ú': 'u', 'ü': 'u', 'ç': 'c',
}
