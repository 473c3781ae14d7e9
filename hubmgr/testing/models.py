"""Tiny random models built fully offline, for tests and plugin authors.

Every builder writes a ``save_pretrained`` folder (safetensors weights, ``config.json`` and a tokenizer
or image processor) that loads with the ``Auto*`` classes like a real Hub checkpoint, in well under a
second. Nothing here touches the network. ``torch`` and ``transformers`` are imported inside the
functions, so importing this module stays cheap.

The configs carry the *base* architecture (``BertModel``, ``GPT2LMHeadModel``, ``LlamaForCausalLM``,
``ViTModel``), so a task loads them with ``AutoModelForSequenceClassification`` and friends and gets a
freshly initialised head, exactly as with ``bert-base-uncased``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "VOCAB_WORDS",
    "tiny_tokenizer",
    "tiny_bert_dir",
    "learnable_bert_dir",
    "tiny_gpt2_dir",
    "tiny_llama_dir",
    "tiny_vit_dir",
]

_SEED = 0
HIDDEN = 32
LAYERS = 2
HEADS = 2

# A few hundred common English words, digits and punctuation: enough for real-ish text to tokenize
# into mostly known ids (anything else becomes the unknown token).
_WORDS = """
the of and to a in is it you that he was for on are with as i his they be at one have this from or had
by hot word but what some we can out other were all there when up use your how said an each she which do
their time if will way about many then them write would like so these her long make thing see him two
has look more day could go come did number sound no most people my over know water than call first who
may down side been now find any new work part take get place made live where after back little only
round man year came show every good me give our under name very through just form sentence great think
say help low line differ turn cause much mean before move right boy old too same tell does set three
want air well also play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us again animal point
mother world near build self earth father head stand own page should country found answer school grow
study still learn plant cover food sun four between state keep eye never last let thought city tree
cross farm hard start might story saw far sea draw left late run while press close night real life few
north open seem together next white children begin got walk example ease paper group always music those
both mark often letter until mile river car feet care second book carry took science eat room friend
began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl
usual young ready above ever red list though feel talk bird soon body dog family direct pose leave song
measure door product black short numeral class wind question happen complete ship area half rock order
fire south problem piece told knew pass since top whole king space heard best hour better true during
hundred five remember step early hold west ground interest reach fast verb sing listen six table travel
less morning ten simple several vowel toward war lay against pattern slow center love person money
serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead
cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free minute strong special
mind behind clear tail produce fact street inch multiply nothing course stay wheel full force blue
object decide surface deep moon island foot system busy test record boat common gold possible plane
stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes
distant fill east paint language among movie film bad awful terrible wonderful excellent boring funny
not nice fun hate loved hated acting plot actor actors story scenes scene worst ever really quite very
positive negative neutral john mary london paris york germany france google microsoft monday today
question answer user assistant system hello hi thanks please sorry
""".split()

_PUNCT = list(".,!?;:'\"-()[]/&%$#@*+=<>")
_DIGITS = [str(d) for d in range(10)] + [str(n) for n in range(10, 101)]
VOCAB_WORDS: list[str] = list(dict.fromkeys(_WORDS + _DIGITS + _PUNCT))

_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CAUSAL_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def tiny_tokenizer(style: str = "bert", *, model_max_length: int = 128) -> Any:
    """Build a word-level fast tokenizer offline.

    Args:
        style: ``"bert"`` (``[PAD] [UNK] [CLS] [SEP] [MASK]``, adds ``[CLS] … [SEP]``), ``"gpt2"``
            (``<s> </s> <unk> <pad>``, adds nothing, eos doubles as bos) or ``"llama"`` (same specials,
            prepends ``<s>``). The causal styles carry a simple ``chat_template``.
        model_max_length: the tokenizer's maximum length.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` over :data:`VOCAB_WORDS` (lower-cased, split on
        whitespace and punctuation).

    Raises:
        ValueError: for an unknown style.
    """
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    if style not in ("bert", "gpt2", "llama"):
        raise ValueError(f"unknown tokenizer style {style!r}; use 'bert', 'gpt2' or 'llama'")
    specials = _BERT_SPECIALS if style == "bert" else _CAUSAL_SPECIALS
    vocab = {tok: i for i, tok in enumerate(specials + VOCAB_WORDS)}
    unk = specials[1]
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=unk))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    if style == "bert":
        cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_max_length=model_max_length,
        )
    if style == "llama":
        bos_id = vocab["<s>"]
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATE,
        padding_side="right",
    )


def _labels(num_labels: int) -> dict[str, Any]:
    id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    return {"num_labels": num_labels, "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def _save(model: Any, extra: Any, path: str | Path, architecture: str) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [architecture]
    model.save_pretrained(out, safe_serialization=True)
    if extra is not None:
        extra.save_pretrained(out)
    return out


def tiny_bert_dir(path: str | Path, num_labels: int = 2) -> Path:
    """Save a tiny random BERT (``BertModel``, hidden 32, 2 layers) and its tokenizer into *path*.

    Args:
        path: folder to write (created if missing).
        num_labels: labels recorded in the config (``LABEL_0`` …), used by classification heads.

    Returns:
        The folder, loadable with ``AutoModel*.from_pretrained`` and ``AutoTokenizer.from_pretrained``.
    """
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer("bert")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=HIDDEN * 2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(num_labels),
    )
    torch.manual_seed(_SEED)
    model = BertModel(config)
    return _save(model, tokenizer, path, "BertModel")


def learnable_bert_dir(path: str | Path, num_labels: int = 2) -> Path:
    """Save a small random BERT that a "does it learn" test can rely on: hidden 64, 2 layers, 4 heads.

    With :func:`hubmgr.testing.keyword_rows` data and :data:`hubmgr.testing.LEARNING_SETTINGS` (60 steps
    of batch 8), LoRA plus the new head reach high accuracy or micro-F1 in seconds on two CPU cores, where
    :func:`tiny_bert_dir` (hidden 32) is too weak to separate a learning task from a broken one. Its
    embeddings are spread (std 1 instead of 0.02), as trained embeddings are, so that distinct words give
    distinct inputs from the first step.
    """
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer("bert")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(num_labels),
    )
    torch.manual_seed(_SEED)
    model = BertModel(config)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.normal_(0.0, 1.0)
        model.embeddings.word_embeddings.weight[tokenizer.pad_token_id].zero_()
    return _save(model, tokenizer, path, "BertModel")


def tiny_gpt2_dir(path: str | Path) -> Path:
    """Save a tiny random GPT-2 (``GPT2LMHeadModel``, hidden 32, 2 layers) and its tokenizer into *path*.

    Args:
        path: folder to write (created if missing).

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tiny_tokenizer("gpt2")
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        n_positions=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(_SEED)
    model = GPT2LMHeadModel(config)
    return _save(model, tokenizer, path, "GPT2LMHeadModel")


def tiny_llama_dir(path: str | Path) -> Path:
    """Save a tiny random Llama (``LlamaForCausalLM``, hidden 32, 2 layers) and its tokenizer into *path*.

    Args:
        path: folder to write (created if missing).

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer``; its projections are
        named ``q_proj``/``k_proj``/``v_proj``/``o_proj``/``gate_proj``/``up_proj``/``down_proj``.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer("llama")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=HIDDEN * 2,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(_SEED)
    model = LlamaForCausalLM(config)
    return _save(model, tokenizer, path, "LlamaForCausalLM")


def tiny_vit_dir(path: str | Path, num_labels: int = 3) -> Path:
    """Save a tiny random ViT (``ViTModel``, 32x32 images, patch 8, hidden 32) and its image processor.

    Args:
        path: folder to write (created if missing).
        num_labels: labels recorded in the config (``LABEL_0`` …).

    Returns:
        The folder, loadable with ``AutoModelForImageClassification`` / ``AutoImageProcessor``.
    """
    import torch
    import transformers
    from transformers import ViTConfig, ViTModel

    # the PIL flavour needs no torchvision; it saves as "ViTImageProcessor" like Hub checkpoints
    ViTImageProcessor = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=HIDDEN * 2,
        **_labels(num_labels),
    )
    processor = ViTImageProcessor(
        do_resize=True,
        size={"height": 32, "width": 32},
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    torch.manual_seed(_SEED)
    model = ViTModel(config, add_pooling_layer=False)
    return _save(model, processor, path, "ViTModel")
