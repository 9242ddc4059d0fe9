"""Which SQL statements a read-only client may run: queries and metadata, nothing that writes (no pyspark here).

``lisearch sql`` (and any endpoint lisearch serves) is read-only by default: a statement passes when it is one
statement whose first keyword is SELECT, WITH, FROM, VALUES, TABLE, SHOW, DESCRIBE (DESC) or EXPLAIN, and no keyword
that writes (INSERT, DELETE, MERGE, ...) appears outside parentheses, string literals, quoted identifiers and
comments (``WITH ... INSERT`` and ``FROM t INSERT ...`` are writes in Spark's grammar; SHOW and DESCRIBE statements
only read, whatever follows). Functions that call arbitrary
Java methods (``reflect``, ``java_method``, ``try_reflect``) are refused too. Anything else needs an explicit
``--write``. The check reads tokens, not the text: a keyword inside a string (``WHERE note = 'DELETE'``) or a
back-quoted column name is data, not a statement.
"""

from __future__ import annotations

import re

from lisearch.errors import InputError

#: First keywords of statements that only read.
READ_KEYWORDS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
#: First keywords of statements that read metadata; no statement that starts with one can write.
METADATA_KEYWORDS = frozenset({"SHOW", "DESCRIBE", "DESC"})
#: Keywords that make a statement write when they appear outside parentheses.
WRITE_KEYWORDS = frozenset({
    "INSERT", "DELETE", "UPDATE", "MERGE", "OVERWRITE", "DROP", "CREATE", "ALTER", "TRUNCATE", "VACUUM", "RESTORE",
    "OPTIMIZE", "CLONE", "CONVERT", "REORG", "MSCK", "LOAD", "CACHE", "UNCACHE", "GRANT", "REVOKE", "REFRESH", "SET",
    "RESET", "ADD", "USE",
})  # fmt: skip
#: First keywords of Spark SQL and Delta statements that change something (beside :data:`WRITE_KEYWORDS`): a first
#: keyword in none of these sets is a typo, not a statement, and is reported as such.
OTHER_STATEMENT_KEYWORDS = frozenset({
    "REPAIR", "FSCK", "COPY", "GENERATE", "LIST", "ANALYZE", "COMMENT", "DECLARE", "EXECUTE", "CALL", "BEGIN",
    "COMMIT", "ROLLBACK", "APPLY", "REPLACE", "UNSET", "SYNC", "CLEAR", "EXPORT", "IMPORT", "MAP", "REDUCE",
})  # fmt: skip
#: Functions that run arbitrary Java methods of the server's JVM.
JAVA_FUNCTIONS = frozenset({"REFLECT", "JAVA_METHOD", "TRY_REFLECT"})

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Token:
    __slots__ = ("depth", "text")

    def __init__(self, text: str, depth: int) -> None:
        self.text, self.depth = text, depth


def _tokens(query: str) -> list[_Token]:
    """Words, parentheses and semicolons of ``query`` with their parenthesis depth; string literals, back-quoted
    identifiers and comments are skipped (Spark's lexer: backslash escapes in literals, nested ``/* */``)."""
    out: list[_Token] = []
    depth, i, n = 0, 0, len(query)
    while i < n:
        c = query[i]
        if c in "'\"":
            i += 1
            while i < n and query[i] != c:
                i += 2 if query[i] == "\\" else 1
            if i >= n:
                raise InputError("The SQL has a string literal that is never closed. Fix the query and run again.")
            i += 1
        elif c == "`":
            end = query.find("`", i + 1)
            while end != -1 and query[end + 1 : end + 2] == "`":  # `` inside a quoted identifier
                end = query.find("`", end + 2)
            if end == -1:
                raise InputError("The SQL has a back-quoted name that is never closed. Fix the query and run again.")
            i = end + 1
        elif query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end == -1 else end + 1
        elif query.startswith("/*", i):
            level, i = 1, i + 2
            while i < n and level:
                if query.startswith("/*", i):
                    level, i = level + 1, i + 2
                elif query.startswith("*/", i):
                    level, i = level - 1, i + 2
                else:
                    i += 1
            if level:
                raise InputError("The SQL has a /* comment that is never closed. Fix the query and run again.")
        elif c == "(":
            out.append(_Token("(", depth))
            depth, i = depth + 1, i + 1
        elif c == ")":
            depth, i = max(depth - 1, 0), i + 1
            out.append(_Token(")", depth))
        elif c == ";":
            out.append(_Token(";", depth))
            i += 1
        elif (word := _WORD.match(query, i)) is not None:
            out.append(_Token(word.group().upper(), depth))
            i = word.end()
        else:
            i += 1
    return out


def statement_keyword(query: str) -> str:
    """The first keyword of ``query`` (upper case), after comments and opening parentheses; "" when it has none."""
    for token in _tokens(query):
        if token.text not in "(;":
            return token.text
    return ""


def write_reason(query: str) -> str | None:
    """Why ``query`` is not a read-only statement (a short phrase), or None when it only reads."""
    tokens = _tokens(query)
    words = [t for t in tokens if t.text not in "();"]
    if not words:
        return "it holds no statement"
    ends = [k for k, t in enumerate(tokens) if t.text == ";"]
    if ends and any(t.text != ";" for t in tokens[ends[0] :]):
        return "it holds more than one statement (run one at a time)"
    if words[0].text not in READ_KEYWORDS:
        return f"it is a {words[0].text} statement"
    if words[0].text in METADATA_KEYWORDS:
        return None  # SHOW and DESCRIBE statements only read, whatever follows (SHOW CREATE TABLE t)
    for k, token in enumerate(tokens):
        if token.depth == 0 and token.text in WRITE_KEYWORDS:
            return f"it contains {token.text}"
        after = tokens[k + 1] if k + 1 < len(tokens) else None
        if token.text in JAVA_FUNCTIONS and after is not None and after.text == "(":
            return f"it calls {token.text.lower()}(), which runs Java code"
    return None


def check_read_only(query: str, write_option: str = "--write") -> str:
    """``query`` when it only reads; otherwise an InputError that says why and names ``write_option`` (or, when its
    first word is no SQL statement at all, that it does not parse)."""
    why = write_reason(query)
    first = statement_keyword(query)
    if why is not None and first and first not in READ_KEYWORDS | WRITE_KEYWORDS | OTHER_STATEMENT_KEYWORDS:
        raise InputError(
            f"The SQL does not parse: it starts with {first!r}, which is not a SQL statement (queries start with "
            "SELECT or WITH; SHOW, DESCRIBE and EXPLAIN read too). Fix the query and run again."
        )
    if why is not None:
        raise InputError(
            f"Refused: lisearch sql is read-only by default and this query writes or may write ({why}). Queries "
            "(SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) run as they are; for maintenance that changes tables, add "
            f"{write_option} (recorded in each changed table's history). If a column is named like a keyword, "
            "quote it with back-quotes."
        )
    return query


__all__ = ["JAVA_FUNCTIONS", "READ_KEYWORDS", "WRITE_KEYWORDS", "check_read_only", "statement_keyword", "write_reason"]
