package catalogsync

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"sync"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// group is a set of product fields that change together as far as the
// store's update switches go.
type group int

const (
	// groupBase is always sent on updates.
	groupBase group = iota
	groupTitle
	groupDescription
	groupImages
	groupDimensions
	// groupVariation is a child's place in its parent: always sent; it
	// comes from the parent's variacao, so it has a hash of its own.
	groupVariation
	// groupBrand goes with the first upsert that has a brand, and after
	// that only with update-brand. Last, so records written before it
	// existed keep their other hashes in place.
	groupBrand
	groupCount
)

// groupFields are the Product fields (lowerCamelCase, as in `fields`) of
// each group.
var groupFields = [groupCount][]string{
	groupBase:        {"code", "ean", "unit", "ncm", "price", "active", "removed", "childrenIds", "hasVariations"},
	groupTitle:       {"name"},
	groupDescription: {"description"},
	groupImages:      {"imageUrl", "additionalImageUrls"},
	groupDimensions:  {"weightGrams", "heightCm", "widthCm", "lengthCm"},
	groupVariation:   {"parentId", "variationTypeA", "variationNameA", "variationTypeB", "variationNameB"},
	groupBrand:       {"brand"},
}

// fieldCategory is set only by the first upsert that has a category.
const fieldCategory = "category"

// allowed reports which groups an update may carry under the tenant's
// switches.
func allowed(s tenant.Settings) [groupCount]bool {
	return [groupCount]bool{
		groupBase:        true,
		groupTitle:       s.GetUpdateTitle(),
		groupDescription: s.GetUpdateDescription(),
		groupImages:      s.GetUpdateImages(),
		groupDimensions:  s.GetUpdateDimensions(),
		groupVariation:   true,
		groupBrand:       s.GetUpdateBrand(),
	}
}

// attrs are a variation's attributes: type and name of its axes A and B.
type attrs struct {
	TypeA string `json:"ta,omitempty"`
	NameA string `json:"na,omitempty"`
	TypeB string `json:"tb,omitempty"`
	NameB string `json:"nb,omitempty"`
}

func attrsOf(v hiper.Variation) *attrs {
	return &attrs{TypeA: v.TypeA, NameA: v.NameA, TypeB: v.TypeB, NameB: v.NameB}
}

// ownAttrs are the attributes older accounts send on the child itself.
func ownAttrs(p hiper.Product) *attrs {
	if p.Color == "" && p.Size == "" {
		return nil
	}
	return &attrs{TypeA: "Cor", NameA: p.Color, TypeB: "Tamanho", NameB: p.Size}
}

func (a *attrs) equal(b *attrs) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// sellable reports whether an order can name p: active, not removed, and
// not a parent (an order names the variation).
func sellable(p hiper.Product) bool {
	return isActive(p) && !bool(p.Removed) && !p.IsParent()
}

// isActive is ativo, and for a variation also variacaoAtiva: Hiper
// documents variacaoAtiva for variations only, and some accounts send it as
// false on simple products and parents, where it means nothing.
func isActive(p hiper.Product) bool {
	return bool(p.Active) && (!p.IsVariation() || p.VariationActive == nil || bool(*p.VariationActive))
}

// storeProduct is p as the store sees it, every field set, the tenant's
// defaults filled in where Hiper has no category or brand.
func storeProduct(p hiper.Product, a *attrs, s tenant.Settings) *eventsv1.Product {
	out := &eventsv1.Product{
		Id:          p.ID,
		Code:        p.Code,
		Ean:         p.Barcode,
		Name:        p.Name,
		Description: p.Description,
		Brand:       p.Brand,
		Category:    p.Category,
		Unit:        p.Unit,
		Ncm:         p.NCM,
		Price:       p.Price.String(),
		Active:      isActive(p),
		Removed:     bool(p.Removed),
		ImageUrl:    p.Image,
		WeightGrams: p.WeightGrams.String(),
		HeightCm:    p.HeightCm.String(),
		WidthCm:     p.WidthCm.String(),
		LengthCm:    p.LengthCm.String(),
	}
	if out.Brand == "" {
		out.Brand = s.GetDefaultBrand()
	}
	if out.Category == "" {
		out.Category = s.GetDefaultCategory()
	}
	for _, img := range p.AdditionalImages {
		out.AdditionalImageUrls = append(out.AdditionalImageUrls, img.URL)
	}
	if p.IsVariation() {
		out.ParentId = p.ParentID
		if a != nil {
			out.VariationTypeA, out.VariationNameA = a.TypeA, a.NameA
			out.VariationTypeB, out.VariationNameB = a.TypeB, a.NameB
		}
	}
	if p.IsParent() {
		out.HasVariations = true
		for _, v := range p.Variations {
			out.ChildrenIds = append(out.ChildrenIds, v.ID)
		}
	}
	return out
}

// hashes are the content hash of each group of a store product.
type hashes [groupCount]uint64

// hashOf hashes each group of sp (the category apart: it is sent once).
func hashOf(sp *eventsv1.Product) hashes {
	var h hashes
	h[groupBase] = baseHash(sp, false)
	h[groupBrand] = partsHash(sp.Brand)
	h[groupTitle] = partsHash(sp.Name)
	h[groupDescription] = partsHash(sp.Description)
	h[groupImages] = newParts().add(sp.ImageUrl).add(sp.AdditionalImageUrls...).sum()
	h[groupDimensions] = partsHash(sp.WeightGrams, sp.HeightCm, sp.WidthCm, sp.LengthCm)
	h[groupVariation] = variationHash(sp.ParentId, &attrs{sp.VariationTypeA, sp.VariationNameA, sp.VariationTypeB, sp.VariationNameB})
	return h
}

// baseHash hashes the always-sent fields of sp together. Records written
// before the brand had a group of its own hashed it here (withBrand):
// legacyBase recognises them.
func baseHash(sp *eventsv1.Product, withBrand bool) uint64 {
	var code [20]byte
	h := newParts().addBytes(strconv.AppendInt(code[:0], sp.Code, 10)).add(sp.Ean)
	if withBrand {
		h = h.add(sp.Brand)
	}
	h = h.add(sp.Unit, sp.Ncm, sp.Price,
		strconv.FormatBool(sp.Active), strconv.FormatBool(sp.Removed), strconv.FormatBool(sp.HasVariations))
	return h.add(sp.ChildrenIds...).sum()
}

// legacyBase is the base hash of sp as records before stateVersion 1 kept it.
func legacyBase(sp *eventsv1.Product) uint64 { return baseHash(sp, true) }

// variationHash hashes a child's place in its parent.
func variationHash(parentID string, a *attrs) uint64 {
	return partsHash(parentID, a.TypeA, a.NameA, a.TypeB, a.NameB)
}

// partsHash is the 64-bit FNV-1a hash of parts, each followed by a zero
// byte: what hash/fnv computes (the stored hashes are its), without turning
// each part into a byte slice that escapes to the heap, as writing to a
// hash.Hash does. Every product is hashed seven times.
func partsHash(parts ...string) uint64 { return newParts().add(parts...).sum() }

// parts is partsHash under way, for parts that are not in one slice.
type parts uint64

const fnvPrime64 = 1099511628211

func newParts() parts { return 14695981039346656037 }

func (h parts) add(ps ...string) parts {
	for _, s := range ps {
		for i := 0; i < len(s); i++ {
			h ^= parts(s[i])
			h *= fnvPrime64
		}
		h *= fnvPrime64 // the zero byte after the part
	}
	return h
}

func (h parts) addBytes(b []byte) parts {
	for _, c := range b {
		h ^= parts(c)
		h *= fnvPrime64
	}
	return h * fnvPrime64
}

func (h parts) sum() uint64 { return uint64(h) }

// eventHash fingerprints an upsert: which groups it sets and their content,
// whether it creates the product, and the category it creates it with. It
// makes the event id, so a re-publish of the same upsert is a duplicate.
func eventHash(h hashes, sets [groupCount]bool, created bool, category string) uint64 {
	f := fnv.New64a()
	var b [8]byte
	for g, on := range sets {
		if on {
			binary.LittleEndian.PutUint64(b[:], h[g])
			f.Write(b[:])
		}
		f.Write([]byte{boolByte(on)})
	}
	f.Write([]byte{boolByte(created)})
	f.Write([]byte(category))
	return f.Sum64()
}

// contentHash fingerprints everything of a product.
func contentHash(h hashes, category string) uint64 {
	f := fnv.New64a()
	var b [8]byte
	for _, v := range h {
		binary.LittleEndian.PutUint64(b[:], v)
		f.Write(b[:])
	}
	f.Write([]byte(category))
	return f.Sum64()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// only keeps the groups of sp that sets names, clearing the other fields.
func only(sp *eventsv1.Product, sets [groupCount]bool) *eventsv1.Product {
	out := &eventsv1.Product{Id: sp.Id}
	if sets[groupBrand] {
		out.Brand = sp.Brand
	}
	if sets[groupBase] {
		out.Code, out.Ean, out.Unit, out.Ncm = sp.Code, sp.Ean, sp.Unit, sp.Ncm
		out.Price, out.Active, out.Removed = sp.Price, sp.Active, sp.Removed
		out.ChildrenIds, out.HasVariations = sp.ChildrenIds, sp.HasVariations
	}
	if sets[groupTitle] {
		out.Name = sp.Name
	}
	if sets[groupDescription] {
		out.Description = sp.Description
	}
	if sets[groupImages] {
		out.ImageUrl, out.AdditionalImageUrls = sp.ImageUrl, sp.AdditionalImageUrls
	}
	if sets[groupDimensions] {
		out.WeightGrams, out.HeightCm, out.WidthCm, out.LengthCm = sp.WeightGrams, sp.HeightCm, sp.WidthCm, sp.LengthCm
	}
	if sets[groupVariation] {
		out.ParentId = sp.ParentId
		out.VariationTypeA, out.VariationNameA = sp.VariationTypeA, sp.VariationNameA
		out.VariationTypeB, out.VariationNameB = sp.VariationTypeB, sp.VariationNameB
	}
	return out
}

// fieldsOf lists the fields of the groups sets names, and the category
// when the event sets it. The lists are shared: an event only reads them.
func fieldsOf(sets [groupCount]bool, category bool) []string {
	key := fieldsKey{sets, category}
	if f, ok := fieldLists.Load(key); ok {
		return f.([]string)
	}
	var out []string
	for g, on := range sets {
		if on {
			out = append(out, groupFields[g]...)
		}
	}
	if category {
		out = append(out, fieldCategory)
	}
	fieldLists.Store(key, out)
	return out
}

type fieldsKey struct {
	sets     [groupCount]bool
	category bool
}

// fieldLists caches fieldsOf: there are few combinations, and a bulk sync
// builds one list per product otherwise.
var fieldLists sync.Map
