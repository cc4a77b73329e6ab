"""Header synonyms: which column of a bank or ledger export holds which Zenith field.

Compared after normalisation (case, accents, punctuation and spaces removed; Cyrillic
letters kept), in English, German, French, Spanish, Italian, Dutch, Portuguese, Swedish,
Lithuanian and Russian, as banks and accounting systems write them. Each field's list is in
order of preference: when two columns name the same field, the better name wins
(Chase's "Description" over its "Details", which holds DEBIT/CREDIT; a Sparkasse's
"Verwendungszweck" over its "Buchungstext", which holds the booking type).

A name may carry the currency of its values ("Amount (EUR)", "Betrag EUR", "Amount in USD",
"Montant (€)"), but only a real ISO 4217 code or a currency sign counts: "Umsatzart",
"Amount Paid" or "Debit Card" name nothing.
"""

from __future__ import annotations

import re
import unicodedata

from jobs.datatypes.fields import ISO_4217

SYNONYMS: dict[str, list[str]] = {
    "id": ["id", "transaction id", "transactionid", "txn id", "fitid", "unique id", "entry id", "journal id",
           "buchungsnummer", "buchungs id", "transaktions id", "transaktionsnummer", "identifiant",
           "numero de transaction", "id transaccion", "numero de operacion", "numero de movimiento",
           "id transazione", "id operazione", "transactie id", "id transacao"],
    "date": ["date", "transaction date", "booking date", "posting date", "post date", "posted date", "posting",
             "posted", "trans date", "entry date", "journal date", "journaldate", "created", "created at",
             "date created", "completed date", "started date",
             "buchungstag", "buchungsdatum", "buchung", "datum", "umsatztag", "belegdatum",
             "date operation", "date de l operation", "date d operation", "date comptable",
             "date de comptabilisation",
             "fecha", "fecha operacion", "fecha de operacion", "fecha contable", "fecha de la operacion",
             "fecha movimiento",
             "data", "data operazione", "data contabile", "data registrazione", "data movimento",
             "transactiedatum", "boekdatum", "boekingsdatum",
             "data lancamento", "data do movimento", "data de lancamento", "data mov", "data operacao",
             "transaktionsdatum", "bokforingsdatum", "bokforingsdag", "reskontradatum",
             # Russian: the processing (booking) date before the card operation's date, as the
             # statement's balance moves on it (VTB, Sberbank); Lithuanian
             "дата обработки операции", "дата обработки", "дата проводки", "дата операции",
             "дата совершения операции", "дата", "operacijos data"],
    "value_date": ["value date", "valuta", "valutadatum", "wertstellung", "wertstellungsdatum", "wert",
                   "date de valeur", "date valeur", "fecha valor", "fecha de valor", "data valuta",
                   "rentedatum", "data valor", "data de valor", "дата валютирования"],
    "amount": ["amount", "transaction amount", "net amount", "value", "total", "betrag", "umsatz", "montant",
               "montant de l operation", "importe", "monto", "cantidad", "importo", "bedrag", "valor",
               "montante", "importo eur", "belopp",
               # Russian: the amount in the account's currency before the operation's
               "сумма в валюте счета", "сумма пересчитанная в валюту счета", "сумма", "сумма операции",
               "suma", "operacijos suma"],
    "debit": ["debit", "debits", "debit amount", "withdrawal", "withdrawals", "withdrawal amount", "paid out",
              "money out", "outflow", "soll", "belastung", "lastschrift", "ausgang", "ausgaben", "retrait",
              "debito", "cargo", "cargos", "debe", "salida", "uscite", "addebiti", "addebito", "af",
              "debet", "saida", "saidas", "debitos", "расход", "списание", "списания", "debetas"],
    "credit": ["credit", "credits", "credit amount", "deposit", "deposits", "deposit amount", "paid in", "money in",
               "inflow", "haben", "gutschrift", "eingang", "einnahmen", "depot", "credito", "abono", "abonos",
               "haber", "entrada", "entrate", "accrediti", "accredito", "bij", "entradas", "creditos",
               "приход", "поступление", "поступления", "kreditas"],
    "currency": ["currency", "currency code", "ccy", "waehrung", "wahrung", "devise", "monnaie", "monn",
                 "moneda", "divisa", "munt", "moeda", "currency iso",
                 # not "валюта операции": its amount is "сумма в валюте операции", not the one read
                 "валюта счета", "валюта", "valiuta", "valutacode"],
    # An aggregator's "Original Description" is the bank's own text, before "Description",
    # which is its cleaned-up merchant name (Mint): a forensic reading keeps what the bank wrote.
    "description": ["original description", "description", "transaction description", "purpose", "memo",
                    "narrative", "transaction details", "details", "text", "reason", "remarks", "notes",
                    "verwendungszweck", "beschreibung", "buchungstext", "buchungsdetails",
                    "libelle", "libelle operation", "libelle de l operation", "motif", "detail",
                    "concepto", "descripcion", "detalle", "observaciones",
                    "descrizione", "causale", "descrizione operazione", "dettagli",
                    "omschrijving", "mededelingen",
                    "descricao", "historico", "descritivo",
                    "descrizione operazioni", "описание операции", "описание",
                    "основание", "назначение платежа", "paaiskinimai", "mokejimo paskirtis"],
    "counterparty": ["counterparty", "payee", "payer", "beneficiary", "merchant", "vendor", "party", "name",
                     "partner name", "merchant name", "payee name", "counterparty name", "recipient",
                     "beguenstigter zahlungspflichtiger", "auftraggeber empfaenger", "zahlungsempfaenger",
                     "empfaenger", "empfanger", "beguenstigter", "begunstigter", "auftraggeber",
                     "zahlungspflichtiger", "name zahlungsbeteiligter", "zahlungsempfaenger in",
                     "zahlungspflichtige r",
                     "beneficiaire", "tiers", "contrepartie", "beneficiario", "ordenante", "contraparte",
                     "controparte", "naam tegenpartij", "tegenpartij", "naam", "naam omschrijving",
                     "beneficiario ordinante",
                     "получатель", "контрагент", "gavejas", "moketojas gavejas", "tegenrekeninghouder",
                     "naam tegenrekening"],
    "reference": ["reference", "ref", "check number", "cheque number", "check no", "check or slip",
                  "document", "doc no",
                  "referenz", "kundenreferenz", "kundenreferenz end to end", "mandatsreferenz",
                  "belegnummer", "beleg", "belegnr", "reference operation", "referencia",
                  "numero de documento", "riferimento", "referentie", "betalingskenmerk",
                  "референс проводки", "код авторизации",
                  "iraso nr", "dokumento nr", "dok nr"],
    # The holder's own account. The counterparty's ("IBAN" next to a payee, "Kontonummer/IBAN",
    # "Tegenrekening") is not it, so those names are not here (issue 19).
    "account": ["account", "account number", "auftragskonto", "own account", "account name", "konto",
                "eigenes konto", "compte", "numero de compte", "cuenta", "numero de cuenta", "rekening",
                "rekeningnummer", "conto", "numero conto", "conta",
                # Austrian ING's "Kontonummer;Text;Datum;...": the holder's; beside a payee column
                # it is the payee's and is not read (mapping.detect_columns). A Sparkasse's
                # counterparty "Kontonummer/IBAN" is another name once normalised.
                "kontonummer", "номер счета", "saskaitos nr", "saskaitos numeris"],
}

# A column that says whether an unsigned amount is a debit or a credit (issue 19, sign from a
# type column): its values must be DIRECTION_VALUES for it to count.
DIRECTION_NAMES = ["debit credit", "debitcredit", "credit debit", "credit debet", "debet credit", "d k", "d c", "dc",
                   "c d", "cr dr", "dr cr", "db cr",
                   "af bij", "bij af", "soll haben", "s h", "sh", "direction", "richtung", "sens", "segno",
                   "type", "transaction type", "typ", "buchungsart", "debit credit indicator", "cdtdbtind",
                   "credit debit indicator", "tipo", "tipo movimento", "in out"]
DEBIT_VALUES = frozenset({"debit", "d", "dr", "db", "deb", "s", "soll", "af", "out", "dbit", "withdrawal",
                          "payment", "belastung", "lastschrift", "addebito", "uscita", "debito", "cargo", "debet",
                          "-"})
CREDIT_VALUES = frozenset({"credit", "c", "cr", "h", "haben", "bij", "in", "crdt", "deposit", "gutschrift",
                           "accredito", "entrata", "credito", "abono", "+", "k"})

def normalize(header: str) -> str:
    """A header as compared: lower case, German umlauts spelled out, other accents dropped
    ("Sąskaitos" -> "saskaitos"), punctuation and spaces removed; Cyrillic letters are kept
    (without their marks: "ё" -> "е", "й" -> "и"), so Russian headers compare like any other."""
    text = str(header).lower()
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, spelled)
    text = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    return _NOT_KEPT.sub("", text)


_NOT_KEPT = re.compile(r"[^a-z0-9а-я]")


# normalised name -> (field, rank); a lower rank is a better name for its field
_INDEX: dict[str, tuple[str, int]] = {}
for _field, _names in SYNONYMS.items():
    for _rank, _name in enumerate(_names):
        _INDEX.setdefault(normalize(_name), (_field, _rank))

# "Amount (EUR)", "Betrag [EUR]", "Amount in USD", "Betrag EUR", "Montant (€)", "Montant (euros)"
_WITH_CURRENCY = re.compile(
    r"^(?P<name>.*?\S)\s*(?:[(\[]\s*(?:in\s+)?(?P<code1>[A-Za-z]{3}|euros?|[€$£¥])\s*[)\]]"
    r"|\s(?:in\s+)?(?P<code2>[A-Za-z]{3}|euros?|[€$£¥]))\s*$", re.IGNORECASE)
_DIRECTIONS: dict[str, int] = {}
for _rank, _name in enumerate(DIRECTION_NAMES):
    _DIRECTIONS.setdefault(normalize(_name), _rank)
_DUPLICATE = re.compile(r"^(?P<base>.*\S) \((?P<n>\d+)\)$")


def match(header: str) -> tuple[str, int] | None:
    """(field, rank) for a column header, or None."""
    key = normalize(header)
    if not key:
        return None
    if key in _INDEX:
        return _INDEX[key]
    found = _WITH_CURRENCY.match(str(header).strip())
    if found:
        code = found.group("code1") or found.group("code2")
        if code.upper() in ISO_4217 or code.lower() in ("euro", "euros") or code in ("€", "$", "£", "¥"):
            base = normalize(found.group("name"))
            if base in _INDEX:
                return _INDEX[base]
    return None


def currency_of(header: str) -> str | None:
    """The ISO 4217 code a column header names for its values ("Amount (EUR)", "Betrag EUR",
    "Montant (€)"), or None."""
    found = _WITH_CURRENCY.match(str(header).strip())
    if not found or normalize(found.group("name")) not in _INDEX:
        return None
    code = found.group("code1") or found.group("code2")
    if code.lower() in ("euro", "euros") or code == "€":
        return "EUR"
    symbols = {"$": "USD", "£": "GBP", "¥": "JPY"}
    if code in symbols:
        return symbols[code]
    return code.upper() if code.upper() in ISO_4217 else None


def direction_rank(header: str) -> int | None:
    """Whether a column header may name the debit/credit indicator of unsigned amounts: its
    rank (lower: a more specific name than "Type"), or None."""
    return _DIRECTIONS.get(normalize(header))


def direction_of(value: str) -> int:
    """-1 for a debit marker, +1 for a credit one, 0 for anything else."""
    text = str(value).strip().lower().rstrip(".")
    if text in DEBIT_VALUES:
        return -1
    if text in CREDIT_VALUES:
        return 1
    return 0


def field_for(header: str) -> str | None:
    """The Zenith field a column header names, or None."""
    found = match(header)
    return found[0] if found else None


def base_name(header: str, others: list[str]) -> str:
    """'Währung (2)' -> 'Währung' when the header also has a plain 'Währung' (a renamed duplicate)."""
    found = _DUPLICATE.match(header)
    if found and found.group("base") in others:
        return found.group("base")
    return header


def score(cells: list[str]) -> int:
    """How many distinct fields a row of cells names (used to find the header row)."""
    return len({field_for(cell) for cell in cells if field_for(cell)})
