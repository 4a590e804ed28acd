"""LLaMA-Factory's side of a converted ``llava_qwen`` checkpoint: the ``mmssr_llava_qwen`` chat
template and multimodal plugin, so ``llamafactory-cli train`` sees the authors' token layout.

- Template: ChatML as the authors wrote it by hand (system ``You are a helpful assistant.``).
  Every string holding ``<image>`` is tokenized piece by piece around it, each placeholder
  becoming the image's embedding slots and one ``"\\n"`` token: the ids the scoring engine builds
  (:mod:`mmssr_plugin.engines.hf.llava_qwen_prompts`), two separate newline tokens included.
- Plugin: images without a placeholder go first (one ``<image>\\n`` each); pixels are the
  authors' 384x384 bicubic resize scaled to [-1, 1] (no processor needed); the token ids of
  LLaMA-Factory's dummy image (batches without images) get the same layout.
- Composite model: the vision tower and projector are frozen and kept out of ``lora_target: all``.

Registered by the start-up hook when ``llamafactory.train.tuner`` is imported (every training
run; LLaMA-Factory and torch are loaded by then); :func:`register` is idempotent.
"""

from __future__ import annotations

from typing import Any

from mmssr_plugin.core.taxonomy import SYSTEM_MESSAGE
from mmssr_plugin.engines.hf.llava_qwen_prompts import (IMAGE_PLACEHOLDER, encode_with_images,
                                                        image_pixels, with_image_placeholders)

NAME = "mmssr_llava_qwen"  # template, plugin and model_type of a converted checkpoint


def register() -> None:
    """Register the template, the plugin and the composite model in LLaMA-Factory (once)."""
    from llamafactory.data import mm_plugin, template
    from llamafactory.data.formatter import StringFormatter
    from llamafactory.model.model_utils.visual import COMPOSITE_MODELS, _register_composite_model

    if NAME in template.TEMPLATES:
        return
    plugin_class, template_class = _classes(mm_plugin.BasePlugin, template.Template)
    if NAME not in mm_plugin.PLUGINS:
        mm_plugin.register_mm_plugin(NAME, plugin_class)
    if NAME not in COMPOSITE_MODELS:
        _register_composite_model(
            model_type=NAME, projector_keys=["model.mm_projector"],
            vision_model_keys=["model.vision_tower"],
            language_model_keys=["model.embed_tokens", "model.layers", "model.norm", "lm_head"])
    template.register_template(
        name=NAME,
        format_user=StringFormatter(
            slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
        format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
        format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
        default_system=SYSTEM_MESSAGE,
        stop_words=["<|im_end|>"],
        replace_eos=True,
        mm_plugin=mm_plugin.get_mm_plugin(NAME, image_token=IMAGE_PLACEHOLDER),
        template_class=template_class,
    )


def _classes(base_plugin: type, base_template: type) -> tuple[type, type]:
    """The plugin and template classes, built on LLaMA-Factory's (imported lazily)."""
    import numpy as np
    import torch

    from mmssr_plugin.engines.hf.llava_qwen_checkpoint import read_config, tokens_per_image
    from mmssr_plugin.engines.hf.llava_qwen_modeling import IMAGE_SLOT_ID

    def slots_per_image(tokenizer: Any) -> int:
        config = read_config(tokenizer.name_or_path)
        if config is None:
            raise ValueError(f"no config.json next to the tokenizer ({tokenizer.name_or_path!r})")
        return tokens_per_image(config)

    class LlavaQwenPlugin(base_plugin):
        """Authors' image layout and pixels; no processor needed."""

        def _validate_input(self, processor: Any, images: list, videos: list, audios: list) -> None:
            if videos or audios:
                raise ValueError(f"the {NAME} template takes images only")

        def process_messages(self, messages, images, videos, audios, processor):
            self._validate_input(processor, images, videos, audios)
            messages = [dict(m) for m in messages]
            if images and not any(IMAGE_PLACEHOLDER in m["content"] for m in messages):
                messages[0]["content"] = with_image_placeholders(messages[0]["content"], len(images))
            found = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in messages)
            if found != len(images):
                raise ValueError(f"{found} {IMAGE_PLACEHOLDER} placeholders for {len(images)} images")
            return messages

        def process_token_ids(self, input_ids, labels, images, videos, audios, tokenizer, processor):
            self._validate_input(processor, images, videos, audios)
            if input_ids and images and IMAGE_SLOT_ID not in input_ids:  # the dummy image's ids
                input_ids = encode_with_images(tokenizer, tokenizer.decode(input_ids),
                                               IMAGE_SLOT_ID, slots_per_image(tokenizer))
            return input_ids, labels

        def get_mm_inputs(self, images, videos, audios, imglens, vidlens, audlens, batch_ids,
                          processor):
            self._validate_input(processor, images, videos, audios)
            if not images:
                return {}
            pixels = [image_pixels(image) for image in self._regularize_images(
                images, image_max_pixels=1 << 62, image_min_pixels=0)["images"]]
            return {"pixel_values": torch.from_numpy(np.stack(pixels))}

    class LlavaQwenTemplate(base_template):
        """Strings holding ``<image>`` are tokenized around it, as the authors did."""

        def _convert_elements_to_ids(self, tokenizer: Any, elements: Any) -> list[int]:
            ids: list[int] = []
            for element in elements:
                if isinstance(element, str) and IMAGE_PLACEHOLDER in element:
                    ids += encode_with_images(tokenizer, element, IMAGE_SLOT_ID,
                                              slots_per_image(tokenizer))
                else:
                    ids += super()._convert_elements_to_ids(tokenizer, [element])
            return ids

    return LlavaQwenPlugin, LlavaQwenTemplate
