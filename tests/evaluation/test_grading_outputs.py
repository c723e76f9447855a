"""The grader on the ways modern models write answers (issue 25): one table per class, every output written
here for the test (no model's text is copied). Each row: (gold, question, output, extracted, correct)."""

from __future__ import annotations

import pytest

from jiuzhang.evaluation.answers import extract_answer, is_unfinished
from jiuzhang.evaluation.grading import grade_answer

GSM_Q = "How many apples are left?"


def check(kind, gold, question, output, extracted, correct, cut_off=False):
    v = grade_answer(kind, gold, output, question=question, cut_off=cut_off)
    assert v.extracted == extracted, (output, v.extracted)
    assert v.correct is correct, (gold, output, v.extracted)


# Markdown emphasis around the answer or inside the statement.
@pytest.mark.parametrize("gold, output, extracted, correct", [
    ("6", "Each box holds 2 apples, so 3 boxes hold 6.\n\nThe final answer is **6**.", "6", True),
    ("12", "She picks 20 and gives away 8.\n\n**12 tomatoes**", "12 tomatoes", True),
    ("12441600", "Multiplying the arrangements gives **12,441,600** in total.", "12,441,600", True),
    ("15", "Adding the two parts:\n\n**Answer: 15**", "15", True),
    ("15", "**Final Answer:** $\\boxed{15}$", "15", True),
    ("42", "So the answer is **$42$**.", "42", True),
    ("41", "The final answer is __41__.", "41", True),
    ("8", "Then **2 + 6 = 8** apples remain, so the answer is **8**.", "8", True),
    ("7", "The final answer is **6**.", "6", False),
])
def test_markdown_emphasis(gold, output, extracted, correct):
    check("numeric", gold, GSM_Q, output, extracted, correct)


def test_python_power_is_not_emphasis():
    assert extract_answer("We compute 2**3 + 4**2 = 24.\nThe answer is 24.") == "24"


# Unicode math: radicals, pi, the minus sign U+2212, vulgar fractions, superscripts.
@pytest.mark.parametrize("kind, gold, output, extracted, correct", [
    ("symbolic", "25+3\\sqrt{5}", "The distance is 25 + 3√5.", "25 + 3\\sqrt{5}", True),
    ("symbolic", "\\frac{1+\\sqrt{3}}{2}", "The final answer is (1 + √3)/2.", "(1 + \\sqrt{3})/2", True),
    ("symbolic", "\\frac{\\pi}{4}", "The angle is π/4.\n\nThe answer is π/4.", "\\pi/4", True),
    ("symbolic", "\\frac{\\pi}{3}", "The answer is π/4.", "\\pi/4", False),
    ("numeric", "-3", "The temperature falls to −3 degrees. The answer is −3.", "-3", True),
    ("numeric", "3", "The answer is −3.", "-3", False),
    ("symbolic", "\\frac{1}{2}", "The answer is ½.", "\\frac{1}{2}", True),
    ("symbolic", "2\\sqrt{3}", "So the side is 2√3 cm. The answer is 2√3.", "2\\sqrt{3}", True),
    ("symbolic", "x^2+1", "The final answer is x² + 1.", "x^{2} + 1", True),
    ("symbolic", "\\sqrt{10}", "The answer is √(10).", "\\sqrt{10}", True),
])
def test_unicode_math(kind, gold, output, extracted, correct):
    check(kind, gold, "", output, extracted, correct)


# Word answers: never the text's last number, equal only to a gold of the same meaning.
@pytest.mark.parametrize("gold, output, extracted, correct", [
    ("5", "Testing n = 1, 2 and 3 gives a pattern, so there are infinitely many solutions.", "infinitely many", False),
    ("\\infty", "Every x > 2 works, so there are infinitely many such values.", "infinitely many", True),
    ("\\infty", "The answer is infinite.", "infinite", True),
    ("2", "Trying x = 1, 2 and 3 fails each time. Therefore there is no solution.", "no solution", False),
    ("\\text{no solution}", "The two lines are parallel, so the system has no solution.", "no solution", True),
    ("0", "The answer is none.", "none", False),
    ("\\emptyset", "Both cases fail, so the answer is none.", "none", True),
])
def test_word_answers(gold, output, extracted, correct):
    check("symbolic", gold, "", output, extracted, correct)


# JSON objects: the 'answer' field wins over anything said inside 'reasoning'.
@pytest.mark.parametrize("gold, output, extracted, correct", [
    ("1940", '{"reasoning": "He was born in 1900 + 40. The answer is 1900 if we forget the 40.", "answer": "1940"}',
     "1940", True),
    ("1940", '```json\n{"reasoning": "The answer is 1940.", "answer": 1904}\n```', "1904", False),
    ("12", 'Here is my solution.\n{"steps": ["3 * 4 = 12"], "final_answer": "12"}', "12", True),
    ("12", '{"reasoning": "3 * 4 = 12", "answer": "\\\\boxed{12}"}', "12", True),
    ("12", '{"reasoning": "no field named for the answer, 3 * 4 = 12"}', "12", True),
])
def test_json_answer_field(gold, output, extracted, correct):
    check("numeric", gold, GSM_Q, output, extracted, correct)


# An equation as the answer when the gold is one; a value when the gold is a value.
@pytest.mark.parametrize("gold, output, extracted, correct", [
    ("x^2+y^2=13", "The circle is $x^2 + y^2 = 13$, so the answer is $x^2 + y^2 = 13$.", "x^2 + y^2 = 13", True),
    ("x^2+y^2=13", "The answer is $y^2 + x^2 = 13$.", "y^2 + x^2 = 13", True),
    ("x^2+y^2=13", "The answer is $13$.", "13", False),
    ("x^2+y^2=13", "\\boxed{x^2 + y^2 = 12}", "x^2 + y^2 = 12", False),
    ("5", "Solving gives \\boxed{x = 5}.", "x = 5", True),
    ("13", "The answer is $x^2 + y^2 = 13$.", "x^2 + y^2 = 13", False),
    ("3", "The answer is 2 * 1.5 = 3 bolts.", "3 bolts", True),
])
def test_equation_vs_value(gold, output, extracted, correct):
    check("symbolic", gold, "", output, extracted, correct)


# A requested form: an equivalent answer in another form is wrong.
FRACTION_Q = "What is the probability? Express your answer as a common fraction."
SIMPLIFY_Q = "Simplify $\\sqrt{8} + \\sqrt{18}$."
RADICAL_Q = "Find the length of the diagonal. Express your answer in simplest radical form."


@pytest.mark.parametrize("question, gold, output, extracted, correct", [
    (FRACTION_Q, "\\frac{3}{4}", "The answer is \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}", True),
    (FRACTION_Q, "\\frac{3}{4}", "The answer is 3/4.", "3/4", True),
    (FRACTION_Q, "\\frac{3}{4}", "The answer is \\boxed{\\frac{6}{8}}.", "\\frac{6}{8}", False),
    (FRACTION_Q, "\\frac{3}{4}", "The answer is \\boxed{0.75}.", "0.75", False),
    ("What is 6/8 of 1?", "\\frac{3}{4}", "The answer is \\boxed{0.75}.", "0.75", True),  # no form requested
    (SIMPLIFY_Q, "5\\sqrt{2}", "\\boxed{5\\sqrt{2}}", "5\\sqrt{2}", True),
    (SIMPLIFY_Q, "5\\sqrt{2}", "\\boxed{\\sqrt{50}}", "\\sqrt{50}", False),
    (RADICAL_Q, "2\\sqrt{2}", "\\boxed{\\sqrt{8}}", "\\sqrt{8}", False),
    (RADICAL_Q, "2\\sqrt{2}", "\\boxed{2\\sqrt{2}}", "2\\sqrt{2}", True),
    (RADICAL_Q, "2\\sqrt{2}", "\\boxed{2.828}", "2.828", False),
])
def test_requested_form(question, gold, output, extracted, correct):
    check("symbolic", gold, question, output, extracted, correct)


# Looping or truncated outputs without a final statement: no answer, whatever their last number, even
# when the engine gave no finish_reason.
LOOP = "Then we add 3 to get 10. " * 12 + "Then we add 3 to"
TRUNCATED = ["First, 4 boxes of 6 apples make 24 apples. Then she gives away 5, so 24 - 5 =",
             "She has 24 apples and gives 5 of them to",
             "The total is 24 + 5 + (3 *",
             "Step 1: 12 apples, step 2: 7 apples,"]


@pytest.mark.parametrize("output", [LOOP, "Let x be 7.\n" * 30, "The answer is 12 and so " + "the answer is 12 and so " * 8,
                                    *TRUNCATED])
def test_unfinished_output_has_no_implied_answer(output):
    assert is_unfinished(output)
    v = grade_answer("numeric", "10", output, question=GSM_Q)
    assert v.extracted is None or "answer is" in output, v.extracted
    assert not v.correct or "answer is" in output


def test_loop_keeps_only_an_explicit_statement():
    v = grade_answer("numeric", "12", "The answer is 12 and so " + "the answer is 12 and so " * 8, question=GSM_Q)
    assert v.extracted == "12"  # an explicit statement inside a loop still states the answer


@pytest.mark.parametrize("output", ["She has 24 apples and gives away 5, leaving 19 apples.",
                                    "So 24 - 5 = 19", "The answer is 19", "24 - 5 = 19 apples remain!",
                                    "Step 1: 3 + 4 = 7. Step 2: 7 * 2 = 14"])
def test_finished_output_is_not_flagged(output):
    assert not is_unfinished(output)
