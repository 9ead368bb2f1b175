"""``train``, ``faceid``, ``generate`` and ``tiny-model``: identity learning and headshot generation.

Each command calls one function of :mod:`headshot_lab.workflow` (the service layer the app calls too), so a
headshot made here is labelled exactly as one made in the app (IPTC ``trainedAlgorithmicMedia``).

JSON contracts (stable, printed on stdout):

* ``train --photos DIR --out DIR`` → ``{"lora", "card", "steps", "resumed_from", "seconds", "notes"}``
* ``faceid PHOTO... --out FILE.npy`` → ``{"embedding", "photos", "encoder", "skipped", "seconds"}``
* ``generate --style NAME -n N --out DIR [--engine lora|faceid|faceid-plus|instantid] [--face-embedding FILE.npy]
  [--selfie PHOTO]`` → ``{"images": [...], "manifest", "seconds"}``
* ``tiny-model OUT --arch sd15|sdxl|flux|flux-dev`` → ``{"path", "arch"}``

``--base`` defaults to ``HEADSHOT_LAB_BASE_MODEL``; without either the command exits 1 with a message
saying what to set.
"""

from __future__ import annotations

import argparse

from headshot_lab import workflow
from headshot_lab.cli import print_json
from headshot_lab.testing.tiny import ARCHES
from headshot_lab.train_flux import WEIGHTING_SCHEMES
from headshot_lab.workflow import IDENTITY_MODES

_BASE_HELP = "Hub id or local diffusers folder (default: $HEADSHOT_LAB_BASE_MODEL)"


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="learn an identity LoRA from photos (DreamBooth-LoRA)")
    train.add_argument("--photos", required=True, help="folder of 10–20 photos of one person")
    train.add_argument("--base", default=None, help=_BASE_HELP)
    train.add_argument("--out", required=True, help="output folder (LoRA, card, checkpoints)")
    train.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    train.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    train.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resolution", type=int, default=None, help="default: the base's native size")
    train.add_argument("--token", default="sks", help="rare token for the person (default sks)")
    train.add_argument("--class-noun", default="person", help="class word (default person)")
    train.add_argument("--no-prior", action="store_true", help="skip prior preservation (no class images)")
    train.add_argument("--class-images", default=None, help="folder of class images (missing ones are generated)")
    train.add_argument("--num-class-images", type=int, default=100)
    train.add_argument("--train-text-encoder", action="store_true", help="also train text-encoder LoRA")
    train.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "fp16", "bf16"])
    train.add_argument("--checkpoint-every", type=int, default=250)
    train.add_argument(
        "--weighting-scheme",
        default="none",
        choices=list(WEIGHTING_SCHEMES),
        help="FLUX bases: timestep density / loss weighting of the rectified-flow loss (default none)",
    )
    train.add_argument(
        "--flux-guidance",
        type=float,
        default=3.5,
        help="FLUX.1-dev-like bases: the guidance input while training (default 3.5; schnell has none)",
    )
    train.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    train.add_argument("--device", default=None, help="cpu, cuda, mps (default: $HEADSHOT_LAB_DEVICE or auto)")
    train.set_defaults(handler=run_train)

    gen = subparsers.add_parser("generate", help="generate headshots (+ manifest.jsonl)")
    gen.add_argument("--base", default=None, help=_BASE_HELP)
    gen.add_argument("--lora", default=None, help="identity LoRA (.safetensors or the train --out folder)")
    gen.add_argument("--lora-scale", type=float, default=1.0)
    gen.add_argument("--style", default="corporate", help="style preset name or .yaml path (default corporate)")
    gen.add_argument("-n", type=int, default=4, help="number of images (default 4)")
    gen.add_argument("--seed", type=int, default=None, help="first seed; image i uses seed+i")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--steps", type=int, default=None, help="sampler steps (default: the style's)")
    gen.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the style's)")
    gen.add_argument("--width", type=int, default=None)
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument(
        "--engine",
        default=None,
        choices=IDENTITY_MODES,
        help="identity engine (default: lora with --lora, faceid with --face-embedding/--faceid); faceid-plus and "
        "instantid also need --selfie; instantid needs an SDXL base",
    )
    gen.add_argument(
        "--selfie", default=None, help="a photo of the person (embedding, FaceID-Plus face crop, InstantID keypoints)"
    )
    gen.add_argument("--clip-image-encoder", default=None, help="FaceID-Plus: CLIP ViT-H image encoder (Hub id/folder)")
    gen.add_argument("--instantid-weights", default=None, help="InstantID weights (default InstantX/InstantID)")
    gen.add_argument(
        "--faceid",
        nargs="?",
        const="h94/IP-Adapter-FaceID",
        default=None,
        help="enable IP-Adapter-FaceID (optional: weights Hub id or folder)",
    )
    gen.add_argument(
        "--face-embedding",
        default=None,
        help="FaceID embedding (.npy from `headshot-lab faceid`); turns IP-Adapter-FaceID on, no --selfie needed",
    )
    gen.add_argument("--faceid-weight-name", default=None)
    gen.add_argument("--faceid-scale", type=float, default=0.7)
    gen.add_argument("--controlnet", default=None, help="ControlNet Hub id or folder")
    gen.add_argument("--control-kind", default="face", choices=["face", "pose", "depth", "canny"])
    gen.add_argument("--control-image", default=None, help="pose reference (default: --selfie)")
    gen.add_argument("--control-scale", type=float, default=0.8)
    gen.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    gen.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    gen.add_argument("--vae-slicing", action="store_true")
    gen.add_argument("--vae-tiling", action="store_true")
    gen.add_argument("--cpu-offload", default="none", choices=["none", "model", "sequential"])
    gen.add_argument("--few-step-lora", default=None, help="LCM-LoRA id/path: ~4 steps with LCMScheduler")
    gen.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    gen.add_argument("--batch-size", type=int, default=1)
    gen.add_argument("--device", default=None)
    gen.add_argument(
        "--detail-face", action="store_true", help="redraw each face at the model's native size (face-detail pass)"
    )
    gen.add_argument(
        "--detail-strength", type=float, default=None, help="denoise strength of that pass (default: the style's)"
    )
    gen.add_argument("--hires-fix", action="store_true", help="upscale, then refine with img2img at low strength")
    gen.add_argument("--hires-scale", type=float, default=2.0, choices=[1.5, 2.0], help="hires-fix scale (1.5 or 2)")
    gen.add_argument("--hires-strength", type=float, default=None, help="hires-fix denoise strength (default 0.35)")
    gen.add_argument(
        "--hires-upscale-model",
        default=None,
        metavar="FILE_OR_HUB_FILE",
        help="hires fix: upscale with this super-resolution model (e.g. RealESRGAN_x2.pth) instead of Lanczos",
    )
    gen.add_argument("--upscale", type=int, default=None, choices=[2, 4], help="enlarge each image 2× or 4×")
    gen.add_argument(
        "--upscale-model",
        default=None,
        help="super-resolution checkpoint or Hub file owner/name:file.pth "
        "(default: $HEADSHOT_LAB_UPSCALE_MODEL; none → Lanczos, labelled in the manifest)",
    )
    gen.set_defaults(handler=run_generate)

    faceid = subparsers.add_parser(
        "faceid", help="tuning-free identity: the mean ArcFace embedding of photos (for generate --face-embedding)"
    )
    faceid.add_argument("photos", nargs="+", metavar="PHOTO", help="photos of one person (files or folders)")
    faceid.add_argument("--out", required=True, help="the .npy file to write (or a folder: faceid_embedding.npy)")
    faceid.set_defaults(handler=run_faceid)

    tiny = subparsers.add_parser("tiny-model", help="write a tiny random base model (tests, smoke tests)")
    tiny.add_argument("out", help="output folder")
    tiny.add_argument("--arch", default="sd15", choices=list(ARCHES))
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=run_tiny_model)


def run_train(args: argparse.Namespace) -> int:
    from headshot_lab.train import TrainConfig

    config = TrainConfig(
        steps=args.steps,
        rank=args.rank,
        learning_rate=args.lr,
        seed=args.seed,
        resolution=args.resolution,
        token=args.token,
        class_noun=args.class_noun,
        prior_preservation=not args.no_prior,
        num_class_images=args.num_class_images,
        train_text_encoder=args.train_text_encoder,
        mixed_precision=args.mixed_precision,
        checkpoint_every=args.checkpoint_every,
        weighting_scheme=args.weighting_scheme,
        guidance_scale=args.flux_guidance,
    )
    result = workflow.train_identity(
        args.photos,
        args.out,
        config,
        base=args.base,
        class_images=args.class_images,
        resume=not args.no_resume,
        device=args.device,
    )
    print_json(
        {
            "lora": str(result.path),
            "card": str(result.card_path),
            "steps": result.steps,
            "resumed_from": result.resumed_from,
            "seconds": round(result.seconds, 2),
            "notes": result.notes,
        }
    )
    return 0


def run_faceid(args: argparse.Namespace) -> int:
    from headshot_lab.cli.check import expand_photo_args

    photos = expand_photo_args(args.photos)
    result = workflow.faceid_identity({str(p): p for p in photos}, args.out)
    print_json(
        {
            "embedding": str(result.path),
            "photos": result.photos,
            "encoder": result.encoder,
            "skipped": result.skipped,
            "seconds": round(result.seconds, 2),
        }
    )
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from headshot_lab.generate import SpeedOptions

    request = workflow.GenerateRequest(
        style=args.style,
        n=args.n,
        seed=args.seed,
        lora=args.lora,
        lora_scale=args.lora_scale,
        face_embedding=args.face_embedding,
        selfie=args.selfie,
        faceid_weights=args.faceid,
        faceid_weight_name=args.faceid_weight_name,
        faceid_scale=args.faceid_scale,
        engine=args.engine,
        clip_encoder=args.clip_image_encoder,
        instantid_weights=args.instantid_weights,
        pose=args.control_kind if args.controlnet else "none",
        controlnet=args.controlnet,
        control_image=args.control_image,
        control_scale=args.control_scale,
        steps=args.steps,
        guidance_scale=args.guidance,
        width=args.width,
        height=args.height,
        detail_face=args.detail_face,
        detail_strength=args.detail_strength,
        hires_fix=args.hires_fix,
        hires_scale=args.hires_scale,
        hires_strength=args.hires_strength,
        hires_upscale_model=args.hires_upscale_model,
        upscale=args.upscale,
        upscale_model=args.upscale_model,
    )
    speed = SpeedOptions(
        precision=args.precision,
        attention=args.attention,
        vae_slicing=args.vae_slicing,
        vae_tiling=args.vae_tiling,
        cpu_offload=args.cpu_offload,
        few_step_lora=args.few_step_lora,
        compile=args.compile,
        batch_size=args.batch_size,
    )
    result = workflow.generate_headshots(request, args.out, base=args.base, speed=speed, device=args.device)
    print_json(
        {
            "images": [str(p) for p in result.images],
            "manifest": str(result.manifest),
            "seconds": round(result.seconds, 2),
        }
    )
    return 0


def run_tiny_model(args: argparse.Namespace) -> int:
    from headshot_lab.testing.tiny import tiny_pipeline

    path = tiny_pipeline(args.arch, args.out, seed=args.seed)
    print_json({"path": str(path), "arch": args.arch})
    return 0
