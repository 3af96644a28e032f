package hiper_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// TestCreateEchoesNoPersonalData: whatever Hiper (or a proxy) echoes of the
// customer in its answer to a create, the error, its kept body and the
// rejection's texts carry none of it, so neither do the order's reasons, its
// events, the logs or the dead letters built from them.
func TestCreateEchoesNoPersonalData(t *testing.T) {
	t.Parallel()
	order := hiper.SalesOrder{
		Customer:        hiper.Customer{Document: "52998224725", Email: "ana@example.com", Name: "Ana Souza"},
		ShippingAddress: hiper.Address{Street: "Rua Principal", Number: "22", Complement: "Sala 2"},
	}
	personal := []string{"52998224725", "529.982.247-25", "ana@example.com", "Ana Souza", "Rua Principal", "Sala 2"}
	echo := "Cliente Ana Souza (CPF 529.982.247-25, ana@example.com) já existe; entrega em Rua Principal, Sala 2"
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"Hiper's refusal", `{"errors":["` + echo + `"],"message":"` + echo + `"}`, 400},
		{"Hiper's refusal in a 200", `{"errors":["documento 52998224725 inválido"]}`, 200},
		{"a proxy's page", "<html>" + echo + "</html>", 502},
		{"an unreadable success", "<html>" + echo, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := serve(t, answer(tt.status, tt.body))
			_, err := c.CreateSalesOrder(t.Context(), testToken, order)
			if err == nil {
				t.Fatal("no error")
			}
			texts := []string{err.Error()}
			if e, ok := errors.AsType[*hiper.Error](err); ok {
				texts = append(texts, string(e.Body), e.Message, strings.Join(e.Errors, "|"))
			}
			if re, ok := errors.AsType[*hiper.RejectedError](err); ok {
				texts = append(texts, re.Message, strings.Join(re.Errors, "|"))
			}
			for _, text := range texts {
				for _, p := range personal {
					if strings.Contains(strings.ToLower(text), strings.ToLower(p)) {
						t.Errorf("%q names the customer (%q)", text, p)
					}
				}
			}
		})
	}
}
