//! `graft`: the command-line face of the engine (same trainer and event stream as the web app).

mod args;
mod backend;
mod commands;
mod progress;

const USAGE: &str = "graft — fine-tune a pretrained MobileNetV2 on folders of images

USAGE:
  graft convert PTH OUT.safetensors            torchvision checkpoint → safetensors (f32)
  graft train DATA_DIR --out DIR [options]     DATA_DIR holds one subfolder per class
      --mode frozen|discriminative (frozen)  --epochs N (10)  --lr F (1e-3)  --ratio F (0.1)
      --batch N (16)  --warmup N (1)  --val F (0.2)  --seed N (42)  --input-size N (224)
      --head replace|stacked|keep (replace)  --views N (3)  --smoothing F (0.1)
      --no-augment  --layer-groups  --json  --from MODEL_DIR (continue training an export)
  graft predict MODEL_DIR IMAGE... [--top K]   top-k classes of each image
  graft predict --imagenet IMAGE... [--top K]  the pretrained ImageNet classifier
  graft export MODEL_DIR OUT.zip               pack an exported model like the web download
  graft bench [--batches 16,32] [--iters N] [--input-size N]

COMMON: --backend flex|wgpu (flex: CPU; wgpu: GPU via Vulkan/Metal/DX12)  --weights FILE";

fn main() {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().unwrap_or_default();
    let result = args::Args::parse(raw).and_then(|args| match command.as_str() {
        "convert" => commands::convert(&args),
        "train" => commands::train(&args),
        "predict" => commands::predict(&args),
        "export" => commands::export(&args),
        "bench" => commands::bench(&args),
        _ => {
            println!("{USAGE}");
            if command.is_empty() || command == "help" || command == "--help" {
                Ok(())
            } else {
                Err(format!("unknown command `{command}`"))
            }
        }
    });
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
