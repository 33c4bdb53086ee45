"""Writes the NLP victim of the MEA tests: a bag-of-words linear classifier
over the 500 most frequent words of the training texts, scripted so that
its forward takes the texts (List[str]) and tokenizes them itself
(lowercase, runs of letters).

usage: mea_text_victim.py data.json out.pt   (data: {"texts": [...], "labels": [...]})
"""
import json
import re
import sys
from collections import Counter
from typing import Dict, List

import torch


class TextBoW(torch.nn.Module):
    def __init__(self, vocab: Dict[str, int], classes: int):
        super().__init__()
        self.vocab = vocab
        self.n = len(vocab)
        self.fc = torch.nn.Linear(len(vocab), classes)

    def encode(self, texts: List[str]) -> torch.Tensor:
        x = torch.zeros(len(texts), self.n)
        for i, t in enumerate(texts):
            word = ""
            for c in t.lower() + " ":
                if c.isalpha():
                    word += c
                else:
                    if word in self.vocab:
                        x[i, self.vocab[word]] += 1.0
                    word = ""
        return x

    def forward(self, texts: List[str]) -> torch.Tensor:
        return self.fc(self.encode(texts))


def main():
    data = json.load(open(sys.argv[1]))
    texts, labels = data["texts"], data["labels"]
    torch.manual_seed(1)
    counts = Counter(w for t in texts for w in re.findall(r"[a-z]+", t.lower()) if len(w) > 1)
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:500]]
    model = TextBoW({w: i for i, w in enumerate(words)}, max(labels) + 1)
    x, y = model.encode(texts), torch.tensor(labels)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model.fc(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float((model.fc(x).argmax(-1) == y).float().mean())
    torch.jit.save(torch.jit.script(model.eval()), sys.argv[2])
    print(json.dumps({"train_accuracy": acc}))


if __name__ == "__main__":
    main()
