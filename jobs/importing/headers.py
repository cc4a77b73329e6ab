"""Header synonyms: which column of a bank or ledger export holds which Zenith field.

Compared after normalisation (case, accents, punctuation and spaces removed), in English,
German, French and Spanish, as banks and accounting systems write them.
"""

from __future__ import annotations

import re
import unicodedata

SYNONYMS: dict[str, list[str]] = {
    "id": ["id", "transaction id", "transactionid", "txn id", "fitid", "unique id", "entry id", "journal id",
           "buchungsnummer", "transaktions id", "identifiant", "numero de transaction", "id transaccion",
           "numero de operacion"],
    "date": ["date", "posting date", "booking date", "transaction date", "posted", "posted date", "trans date",
             "buchungstag", "buchungsdatum", "datum", "date operation", "date de l operation", "date comptable",
             "fecha", "fecha operacion", "fecha contable", "fecha de operacion"],
    "value_date": ["value date", "valuta", "valutadatum", "wertstellung", "date de valeur", "fecha valor"],
    "amount": ["amount", "transaction amount", "value", "net amount", "betrag", "umsatz", "betrag eur",
               "montant", "importe", "monto", "cantidad"],
    "debit": ["debit", "debits", "withdrawal", "withdrawals", "paid out", "money out", "outflow", "soll",
              "belastung", "lastschrift", "ausgang", "debit eur", "retrait", "cargo", "cargos", "debe", "salida"],
    "credit": ["credit", "credits", "deposit", "deposits", "paid in", "money in", "inflow", "haben", "gutschrift",
               "eingang", "credit eur", "depot", "abono", "abonos", "haber", "entrada"],
    "currency": ["currency", "ccy", "currency code", "waehrung", "wahrung", "devise", "monnaie", "moneda", "divisa"],
    "description": ["description", "details", "memo", "narrative", "purpose", "transaction details", "text",
                    "verwendungszweck", "buchungstext", "beschreibung", "libelle", "libelle operation", "motif",
                    "concepto", "descripcion", "detalle"],
    "counterparty": ["counterparty", "payee", "payer", "beneficiary", "name", "merchant", "vendor", "party",
                     "auftraggeber", "empfaenger", "empfanger", "beguenstigter", "begunstigter",
                     "auftraggeber empfaenger", "zahlungspflichtiger", "beneficiaire", "tiers", "contrepartie",
                     "beneficiario", "ordenante", "contraparte"],
    "reference": ["reference", "ref", "check number", "cheque number", "check no", "document", "doc no",
                  "referenz", "kundenreferenz", "mandatsreferenz",
                  "belegnummer", "beleg", "belegnr", "reference operation", "referencia",
                  "numero de documento"],
    "account": ["account", "account number", "iban", "konto", "kontonummer", "compte", "numero de compte",
                "cuenta", "numero de cuenta"],
}

_INDEX = {}
for _field, _names in SYNONYMS.items():
    for _name in _names:
        _INDEX.setdefault(re.sub(r"[^a-z0-9]", "", _name), _field)


def normalize(header: str) -> str:
    text = str(header).lower()
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, spelled)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text)


def field_for(header: str) -> str | None:
    """The Zenith field a column header names, or None."""
    key = normalize(header)
    if not key:
        return None
    if key in _INDEX:
        return _INDEX[key]
    # "Betrag (EUR)", "Amount in USD": a known name followed by a currency code
    for size in (3, 4):
        if len(key) > size and key[:-size] in _INDEX and key[-size:].upper().isalpha():
            return _INDEX[key[:-size]]
    return None


def score(cells: list[str]) -> int:
    """How many distinct fields a row of cells names (used to find the header row)."""
    return len({field_for(cell) for cell in cells if field_for(cell)})
