import Foundation

/// Answer normalisation and scoring as the VQA challenge's evaluator (EvalAI's
/// `vqaEval.py`, the processor lmms-eval and LLaVA's evaluation scripts use) does it:
///
/// 1. newlines and tabs become spaces, the ends are trimmed, the text is lower-cased;
/// 2. punctuation: each of `; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !` is deleted where it
///    touches a space (or anywhere, when the text has a digit-comma-digit group), otherwise
///    replaced by a space; a period is deleted unless a digit follows it ("3.5" stays);
/// 3. words: number words zero…ten (and "none") become digits, the articles a / an / the are
///    dropped, apostrophe-less contractions are restored ("dont" → "don't").
///
/// Unlike the original script, which normalises only when the human answers disagree, both
/// the prediction and every reference answer are always normalised (as lmms-eval does): a
/// generative model's "Two." should match "2".
public enum AnswerScoring {
    static let punctuation: [Character] = [";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
    static let numbers = ["none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                          "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"]
    static let articles: Set<String> = ["a", "an", "the"]
    static let contractions: [String: String] = [
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't",
        "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
        "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll",
        "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd",
        "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
        "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
        "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
        "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've",
        "she'dve": "she'd've", "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
        "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
        "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
        "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
        "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
        "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd",
        "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
        "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
        "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
        "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
        "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
        "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
        "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
        "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
        "youll": "you'll", "youre": "you're", "youve": "you've",
    ]

    /// The normalised form two answers are compared in.
    public static func normalize(_ answer: String) -> String {
        let text = answer.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
            .trimmingCharacters(in: .whitespaces).lowercased()
        let chars = Array(text)
        var hasDigitComma = false
        if chars.count >= 3 {
            for i in 1..<(chars.count - 1) where chars[i] == "," && chars[i - 1].isASCIIDigit && chars[i + 1].isASCIIDigit {
                hasDigitComma = true
            }
        }
        var out = text
        for p in punctuation {
            let touchesSpace = text.contains(String(p) + " ") || text.contains(" " + String(p))
            out = out.replacingOccurrences(of: String(p), with: touchesSpace || hasDigitComma ? "" : " ")
        }
        // The original's period rule `(?!<=\d)(\.)(?!\d)` only looks ahead: a period survives
        // when a digit follows it.
        let o = Array(out)
        var kept = ""
        for (i, c) in o.enumerated() where !(c == "." && !(i + 1 < o.count && o[i + 1].isASCIIDigit)) { kept.append(c) }
        let words = kept.split(whereSeparator: { $0 == " " }).map { numbers[String($0)] ?? String($0) }
            .filter { !articles.contains($0) }
            .map { contractions[$0] ?? $0 }
        return words.joined(separator: " ")
    }

    /// 1 or 0: the prediction equals the single reference after normalisation.
    public static func exact(_ prediction: String, _ reference: String) -> Double {
        normalize(prediction) == normalize(reference) ? 1 : 0
    }

    /// VQA accuracy against up to ten human answers: for each answer left out in turn,
    /// min(1, matches among the other nine ÷ 3), averaged.
    public static func vqa(_ prediction: String, _ references: [String]) -> Double {
        guard !references.isEmpty else { return 0 }
        let p = normalize(prediction)
        let refs = references.map(normalize)
        var total = 0.0
        for i in refs.indices {
            var matches = 0
            for (j, r) in refs.enumerated() where j != i && r == p { matches += 1 }
            total += min(1, Double(matches) / 3)
        }
        return total / Double(refs.count)
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
